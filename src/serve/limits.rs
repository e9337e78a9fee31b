//! The server's limits: request size, conversation size, time, concurrency and sessions.

use std::time::Duration;

use crate::{Error, Result};

/// How much the server accepts and keeps. Every limit is enforced with a 4xx or 503 JSON
/// error, never by queueing without bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Most messages in a conversation: a `/v1/recommend` request's `messages`, or a session's
    /// history plus the new message (422 beyond).
    pub max_messages: usize,
    /// Longest message, in characters (422 beyond).
    pub max_message_chars: usize,
    /// Time allowed for one API request, body included (503 `timeout` beyond).
    pub request_timeout: Duration,
    /// API requests handled at once; one more is refused at once with 503 `overloaded`.
    /// A request that timed out still counts until its computation ends.
    pub max_concurrent_requests: usize,
    /// Sessions kept; creating one more evicts the least recently used.
    pub max_sessions: usize,
    /// A session unused for this long is forgotten.
    pub session_ttl: Duration,
    /// Most user ids one `GET /v1/users` page lists.
    pub max_page_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_messages: 64,
            max_message_chars: 2_000,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 64,
            max_sessions: 10_000,
            session_ttl: Duration::from_secs(60 * 60),
            max_page_size: 1_000,
        }
    }
}

impl Limits {
    /// Checks every limit is usable (non-zero; a body large enough for one message).
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_messages", self.max_messages),
            ("max_message_chars", self.max_message_chars),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("max_sessions", self.max_sessions),
            ("max_page_size", self.max_page_size),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", "must be longer than zero"));
        }
        if self.session_ttl.is_zero() {
            return Err(invalid("session_ttl", "must be longer than zero"));
        }
        // Room for one message of the longest length (4 bytes a character) and the JSON around.
        let needed = self.max_message_chars.saturating_mul(4).saturating_add(256);
        if self.max_body_bytes < needed.min(1024) {
            return Err(invalid(
                "max_body_bytes",
                &format!("{} bytes cannot hold one message", self.max_body_bytes),
            ));
        }
        Ok(())
    }
}

fn invalid(key: &str, reason: &str) -> Error {
    Error::InvalidSetting {
        key: format!("serve.{key}"),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeros_are_not() {
        Limits::default().validate().unwrap();
        let zero_sessions = Limits {
            max_sessions: 0,
            ..Limits::default()
        };
        let err = zero_sessions.validate().unwrap_err().to_string();
        assert!(err.contains("serve.max_sessions"), "{err}");
        let no_time = Limits {
            request_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(no_time.validate().is_err());
        let tiny_body = Limits {
            max_body_bytes: 100,
            ..Limits::default()
        };
        assert!(tiny_body.validate().is_err());
    }
}
