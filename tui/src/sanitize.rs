//! Text from the outside world made safe for the operator's screen: every
//! client-supplied string goes through [`sanitize`] before it reaches a
//! widget. The rules live in `wsadmin_core::text`, shared with the CLI.

use std::borrow::Cow;

/// Escapes control and bidirectional characters; see
/// [`wsadmin_core::text::escape_control`].
pub fn sanitize(text: &str) -> Cow<'_, str> {
    wsadmin_core::text::escape_control(text)
}
