//! A backend that never answers: every call fails with [`StoreError::Backend`] and the text it was
//! made with. For tests of what a gateway does when its shared store is down (it must refuse,
//! never let a request through unchecked, and keep the store's error text out of its answers).

use crate::oauth::{UserRecord, UserStore};
use crate::{LimitStore, OpenSession, Result, SessionStore, StoreError, async_trait};
use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::{Limited, Now, Remaining};

/// Fails every call with this text (say, a connection string the answer must not leak).
pub struct Unavailable(pub String);

impl Unavailable {
    fn fail<T>(&self) -> Result<T> {
        Err(StoreError::Backend(self.0.clone()))
    }
}

#[async_trait]
impl SessionStore for Unavailable {
    async fn reserve(&self, _: Option<&str>, _: &str, _: usize, _: i64, _: i64) -> Result<bool> {
        self.fail()
    }
    async fn release(&self, _: &str) -> Result<()> {
        self.fail()
    }
    async fn open(&self, _: &str, _: Option<&str>, _: Option<&str>, _: i64) -> Result<()> {
        self.fail()
    }
    async fn touch(&self, _: &str, _: i64) -> Result<Option<OpenSession>> {
        self.fail()
    }
    async fn close(&self, _: &str) -> Result<bool> {
        self.fail()
    }
    async fn count(&self, _: Option<&str>, _: i64) -> Result<usize> {
        self.fail()
    }
    async fn total(&self) -> Result<usize> {
        self.fail()
    }
    async fn list(&self, _: usize) -> Result<Vec<crate::SessionInfo>> {
        self.fail()
    }
    async fn purge_idle(&self, _: i64, _: i64) -> Result<usize> {
        self.fail()
    }
}

#[async_trait]
impl LimitStore for Unavailable {
    async fn check(
        &self,
        _: &str,
        _: &Limits,
        _: Option<(&str, &Limits)>,
        _: Now,
    ) -> Result<std::result::Result<(), Limited>> {
        self.fail()
    }
    async fn remaining(&self, _: &str, _: &Limits, _: Now) -> Result<Remaining> {
        self.fail()
    }
}

#[async_trait]
impl UserStore for Unavailable {
    async fn record_sign_in(&self, _: &UserRecord, _: i64) -> Result<UserRecord> {
        self.fail()
    }
    async fn get_user(&self, _: &str) -> Result<Option<UserRecord>> {
        self.fail()
    }
    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.fail()
    }
    async fn remove_user(&self, _: &str) -> Result<bool> {
        self.fail()
    }
}
