//! Conversations the server keeps: bounded in count and idle age, least recently used evicted
//! first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Conversation;

/// One kept conversation.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) conversation: Conversation,
    pub(crate) user_id: String,
    /// Bumped by every recorded turn: a turn computed on an older version is refused.
    pub(crate) version: u64,
    last_used: Instant,
}

/// Why a computed turn could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitError {
    /// The session was deleted, expired or evicted meanwhile.
    Gone,
    /// Another message of the same session was recorded meanwhile.
    Conflict,
}

/// The sessions, by id.
#[derive(Debug)]
pub(crate) struct SessionStore {
    max_sessions: usize,
    ttl: Duration,
    entries: HashMap<String, Entry>,
}

impl SessionStore {
    pub(crate) fn new(max_sessions: usize, ttl: Duration) -> Self {
        SessionStore {
            max_sessions,
            ttl,
            entries: HashMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Starts a conversation under a new random id; drops expired sessions first, then the
    /// least recently used while the store is full. Returns the id and how many were evicted.
    pub(crate) fn create(&mut self, user_id: &str, now: Instant) -> (String, usize) {
        let before = self.entries.len();
        let ttl = self.ttl;
        self.entries
            .retain(|_, entry| now.saturating_duration_since(entry.last_used) < ttl);
        while self.entries.len() >= self.max_sessions {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.entries.remove(&id),
                None => break,
            };
        }
        let evicted = before - self.entries.len();
        let id = loop {
            let id = format!("{:032x}", rand::random::<u128>());
            if !self.entries.contains_key(&id) {
                break id;
            }
        };
        self.entries.insert(
            id.clone(),
            Entry {
                conversation: Conversation::new(id.clone(), user_id),
                user_id: user_id.to_string(),
                version: 0,
                last_used: now,
            },
        );
        (id, evicted)
    }

    /// The session, when it exists and has not expired; marks it used.
    pub(crate) fn get(&mut self, id: &str, now: Instant) -> Option<&Entry> {
        let expired = self
            .entries
            .get(id)
            .is_some_and(|entry| now.saturating_duration_since(entry.last_used) >= self.ttl);
        if expired {
            self.entries.remove(id);
            return None;
        }
        let entry = self.entries.get_mut(id)?;
        entry.last_used = now;
        Some(entry)
    }

    /// Records a conversation computed from the session's `version`.
    pub(crate) fn commit(
        &mut self,
        id: &str,
        version: u64,
        conversation: Conversation,
        now: Instant,
    ) -> Result<(), CommitError> {
        let entry = self.entries.get_mut(id).ok_or(CommitError::Gone)?;
        if entry.version != version {
            return Err(CommitError::Conflict);
        }
        entry.conversation = conversation;
        entry.version += 1;
        entry.last_used = now;
        Ok(())
    }

    /// Forgets a session; false when it did not exist.
    pub(crate) fn remove(&mut self, id: &str) -> bool {
        self.entries.remove(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_are_evicted_first_and_idle_ones_expire() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut store = SessionStore::new(2, Duration::from_secs(100));
        let (a, _) = store.create("u", at(0));
        let (b, _) = store.create("", at(1));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        // Using `a` makes `b` the least recently used.
        assert!(store.get(&a, at(2)).is_some());
        let (c, evicted) = store.create("", at(3));
        assert_eq!(evicted, 1);
        assert!(store.get(&b, at(3)).is_none());
        assert!(store.get(&a, at(3)).is_some());
        assert_eq!(store.len(), 2);
        // `c` was last used at 3: gone at 103, while `a` (used at 3 too) is asked first.
        assert!(store.get(&c, at(102)).is_some());
        assert!(store.get(&a, at(103)).is_none());
        assert_eq!(store.len(), 1);
        let (_, evicted) = store.create("", at(300));
        assert_eq!(evicted, 1, "the expired session is dropped on create");
        assert!(store.remove(&store.entries.keys().next().unwrap().clone()));
        assert!(!store.remove("nope"));
    }

    #[test]
    fn commits_need_the_version_they_started_from() {
        let now = Instant::now();
        let mut store = SessionStore::new(10, Duration::from_secs(100));
        let (id, _) = store.create("u", now);
        let entry = store.get(&id, now).unwrap().clone();
        assert_eq!(entry.user_id, "u");
        let mut next = entry.conversation.clone();
        next.record(
            "hi",
            &crate::Reply {
                tracks: vec![],
                response: "hello".into(),
                check: Default::default(),
                replaced: false,
            },
        );
        assert_eq!(store.commit(&id, 0, next.clone(), now), Ok(()));
        assert_eq!(
            store.commit(&id, 0, next.clone(), now),
            Err(CommitError::Conflict)
        );
        assert_eq!(
            store.get(&id, now).unwrap().conversation.messages().len(),
            2
        );
        store.remove(&id);
        assert_eq!(store.commit(&id, 1, next, now), Err(CommitError::Gone));
    }
}
