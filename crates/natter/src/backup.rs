//! `natter backup`: a consistent copy of the database while the server runs.

use std::path::Path;

use anyhow::{bail, Result};
use natter_server::DATABASE_FILE;
use natter_store::SqliteStore;

use crate::account::DataArgs;

pub fn run(dest: &Path, data: &DataArgs) -> Result<()> {
    let config = data.config()?;
    let db = config.data_dir.join(DATABASE_FILE);
    if !db.exists() {
        bail!(
            "no database at {}: give the server's data directory with --data DIR",
            db.display()
        );
    }
    if dest.exists() {
        bail!(
            "{} exists already: choose a new file name, natter will not overwrite it",
            dest.display()
        );
    }
    // SQLite's online backup copies page by page under a read transaction: the copy
    // is a consistent snapshot even while the server keeps writing.
    SqliteStore::open(&db)?.backup_to(dest)?;
    println!("backed up {} to {}", db.display(), dest.display());
    Ok(())
}
