//! A conversation's messages, as the OpenAI API carries them.

use serde::Serialize;

/// One message of a conversation, as the OpenAI API carries it.
///
/// Serialised as `{"role", "content"}`, the shape chat templates read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` (or another role the template knows).
    pub role: String,
    /// The message text.
    pub content: String,
}
