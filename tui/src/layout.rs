//! Where each part of the screen goes for a terminal size, and which rows of
//! the table a page shows: arithmetic over sizes, shared by the app (paging,
//! scrolling) and the drawing. It knows neither the app nor any widget.

use ratatui::layout::{Constraint, Layout, Rect};

/// The details pane sits beside the table from this width; below it, it
/// takes the table's place.
const SIDE_BY_SIDE_WIDTH: u16 = 100;
const DETAILS_WIDTH: u16 = 48;

/// The optional parts of the screen, which take room from the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Panes {
    /// The header has an error line.
    pub error: bool,
    /// The details pane is open.
    pub details: bool,
}

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy)]
pub struct Areas {
    pub header: Rect,
    pub table: Rect,
    pub details: Option<Rect>,
    pub activity: Rect,
    pub footer: Rect,
}

impl Areas {
    pub fn new(area: Rect, panes: Panes) -> Self {
        let header_h = match (area.height, panes.error) {
            (..16, _) => 2,
            (_, true) => 4,
            (_, false) => 3,
        };
        let activity_h = match area.height {
            30.. => 10,
            20.. => 7,
            _ => 0,
        };
        let [header, body, activity, footer] = Layout::vertical([
            Constraint::Length(header_h),
            Constraint::Min(0),
            Constraint::Length(activity_h),
            Constraint::Length(1),
        ])
        .areas(area);
        let (table, details) = if !panes.details {
            (body, None)
        } else if body.width >= SIDE_BY_SIDE_WIDTH {
            let [table, details] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(DETAILS_WIDTH)])
                    .areas(body);
            (table, Some(details))
        } else {
            (Rect::new(body.x, body.y, body.width, 0), Some(body))
        };
        Self {
            header,
            table,
            details,
            activity,
            footer,
        }
    }
}

/// Rows of connections the table shows on a terminal of `width` x `height`
/// (its header row aside); at least 1, so paging always moves.
pub fn table_rows(width: u16, height: u16, panes: Panes) -> usize {
    let table = Areas::new(Rect::new(0, 0, width, height), panes).table;
    usize::from(table.height.saturating_sub(1)).max(1)
}

/// The first visible row that keeps `selected` on a page of `rows`, moving
/// as little as possible from `offset`.
pub fn visible_offset(offset: usize, selected: usize, rows: usize, len: usize) -> usize {
    let rows = rows.max(1);
    let offset = if selected < offset {
        selected
    } else if selected >= offset + rows {
        selected + 1 - rows
    } else {
        offset
    };
    // Never leave empty rows below the last one while there are rows above.
    offset.min(len.saturating_sub(rows))
}
