//! One module per subcommand: its arguments and what it does.

pub(crate) mod chat;
pub(crate) mod demo_data;
pub(crate) mod evaluate;
pub(crate) mod run;
pub(crate) mod train_ranker;
pub(crate) mod validate;

use std::path::Path;

use anyhow::Result;

pub(crate) fn create_parent_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    Ok(())
}
