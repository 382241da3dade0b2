//! The plan of a deploy: what a change set would do to each logical
//! resource (add, modify, replace, remove), and how `wsstack up` and
//! `wsstack plan` print it. Pure: built from plain values (read from
//! CloudFormation by [`crate::cloudformation`]), tested without AWS.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Add,
    Modify,
    Remove,
    Import,
    /// CloudFormation cannot tell before executing (a dynamic reference).
    Dynamic,
    Other(String),
}

/// Whether a modification replaces the physical resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Replacement {
    #[default]
    No,
    /// CloudFormation says it may, depending on values known only then.
    Conditional,
    Yes,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub action: Action,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: Replacement,
}

impl Change {
    /// The word the printout uses: `replace` for a modification that
    /// replaces (data in a replaced table is lost: it must stand out).
    pub fn verb(&self) -> &str {
        match (&self.action, self.replacement) {
            (Action::Add, _) => "add",
            (Action::Modify, Replacement::Yes) => "replace",
            (Action::Modify, Replacement::Conditional) => "replace?",
            (Action::Modify, Replacement::No) => "modify",
            (Action::Remove, _) => "remove",
            (Action::Import, _) => "import",
            (Action::Dynamic, _) => "dynamic",
            (Action::Other(a), _) => a,
        }
    }

    fn sign(&self) -> char {
        match (&self.action, self.replacement) {
            (Action::Add | Action::Import, _) => '+',
            (Action::Remove, _) => '-',
            (Action::Modify, Replacement::Yes | Replacement::Conditional) => '!',
            _ => '~',
        }
    }
}

/// What one change set would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// In printing order: additions, modifications, removals; by logical id.
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn new(mut changes: Vec<Change>) -> Self {
        changes.sort_by(|a, b| {
            (&a.action, &a.logical_id, &a.resource_type).cmp(&(
                &b.action,
                &b.logical_id,
                &b.resource_type,
            ))
        });
        Self { changes }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// `2 to add, 1 to modify (1 replaced), 0 to remove`.
    pub fn summary(&self) -> String {
        let count = |f: &dyn Fn(&Change) -> bool| self.changes.iter().filter(|c| f(c)).count();
        let add = count(&|c| matches!(c.action, Action::Add | Action::Import));
        let modify = count(&|c| matches!(c.action, Action::Modify | Action::Dynamic));
        let replaced = count(&|c| c.action == Action::Modify && c.replacement != Replacement::No);
        let remove = count(&|c| c.action == Action::Remove);
        let mut text = format!("{add} to add, {modify} to modify");
        if replaced > 0 {
            let _ = write!(text, " ({replaced} replaced)");
        }
        let _ = write!(text, ", {remove} to remove");
        text
    }

    /// The printout: a header naming the stack, one line per resource.
    pub fn render(&self, stack: &str, new_stack: bool) -> String {
        let mut out = format!(
            "plan for stack \"{stack}\"{}: {}\n",
            if new_stack { " (new)" } else { "" },
            self.summary()
        );
        let id_width = self
            .changes
            .iter()
            .map(|c| c.logical_id.len())
            .max()
            .unwrap_or(0);
        for c in &self.changes {
            let _ = writeln!(
                out,
                "  {} {:<8} {:<id_width$}  {}",
                c.sign(),
                c.verb(),
                c.logical_id,
                c.resource_type
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: Action, id: &str, replacement: Replacement) -> Change {
        Change {
            action,
            logical_id: id.into(),
            resource_type: "AWS::X::Y".into(),
            replacement,
        }
    }

    #[test]
    fn prints_each_resource_with_its_action() {
        let plan = Plan::new(vec![
            change(Action::Remove, "OldRoute", Replacement::No),
            change(Action::Modify, "Table", Replacement::Yes),
            change(Action::Add, "ChatRoute", Replacement::No),
            change(Action::Modify, "MessageFunction", Replacement::No),
        ]);
        assert_eq!(
            plan.render("demo", false),
            "plan for stack \"demo\": 1 to add, 2 to modify (1 replaced), 1 to remove\n\
             \x20 + add      ChatRoute        AWS::X::Y\n\
             \x20 ~ modify   MessageFunction  AWS::X::Y\n\
             \x20 ! replace  Table            AWS::X::Y\n\
             \x20 - remove   OldRoute         AWS::X::Y\n"
        );
        assert_eq!(
            Plan::default().render("x", true),
            "plan for stack \"x\" (new): 0 to add, 0 to modify, 0 to remove\n"
        );
    }
}
