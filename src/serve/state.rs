//! What every request shares: the method, the limits, the sessions, the metrics and the
//! admission semaphore.

use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Semaphore;

use super::limits::Limits;
use super::metrics::Metrics;
use super::sessions::SessionStore;
use crate::Crs;

/// The shared state, cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState(Arc<Shared>);

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) crs: Arc<Crs>,
    /// The method's name (its config's `tid`).
    pub(crate) method: String,
    pub(crate) limits: Limits,
    pub(crate) metrics: Metrics,
    /// One permit per API request handled at once.
    pub(crate) admission: Arc<Semaphore>,
    /// The users table's ids, sorted (for the page's picker).
    pub(crate) user_ids: Vec<String>,
    sessions: Mutex<SessionStore>,
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub(crate) fn new(crs: Arc<Crs>, method: String, limits: Limits) -> Self {
        let mut user_ids: Vec<String> = crs.user_ids().map(str::to_string).collect();
        user_ids.sort_unstable();
        AppState(Arc::new(Shared {
            method,
            metrics: Metrics::new(),
            admission: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            sessions: Mutex::new(SessionStore::new(limits.max_sessions, limits.session_ttl)),
            user_ids,
            limits,
            crs,
        }))
    }
}

impl Shared {
    /// The session store. A panic while it was held cannot leave it half-updated (every
    /// update is one map operation), so a poisoned lock is used as it is.
    pub(crate) fn sessions(&self) -> MutexGuard<'_, SessionStore> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
