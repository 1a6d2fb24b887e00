//! Store failures.

use std::fmt;

/// A store operation failed. The text says what was being done.
#[derive(Debug)]
pub struct StoreError {
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(context: impl Into<String>) -> StoreError {
        StoreError {
            context: context.into(),
            source: None,
        }
    }

    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(context: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let context = context.into();
        move |e| StoreError {
            context,
            source: Some(Box::new(e)),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.context),
            None => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
