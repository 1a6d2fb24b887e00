//! Replays the `parse_line` fuzz target's seed corpus through the target's own check,
//! so that the fuzz property runs on every `cargo test` on the stable toolchain,
//! where libFuzzer cannot.
//!
//! Set `NATTER_FUZZ_REPLAY=dir1:dir2` to replay other inputs too, e.g. a corpus or
//! the crash artifacts that `cargo fuzz run parse_line` left in `fuzz/`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../../../fuzz/src/lib.rs"]
mod fuzz_check;

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus-seed/parse_line")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs the check on every file and fails naming each input that failed.
fn replay(files: &[PathBuf]) {
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).expect("readable input");
            catch_unwind(AssertUnwindSafe(|| fuzz_check::check_parse_line(&data)))
                .err()
                .map(|_| path.display().to_string())
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} inputs failed the parse_line check (see the panics above): {failures:#?}",
        failures.len(),
        files.len()
    );
}

#[test]
fn seed_corpus_passes_the_fuzz_check() {
    let files = files_in(&seed_dir());
    // Guards against the corpus moving and the test passing on nothing.
    assert!(files.len() >= 20, "only {} seed inputs found", files.len());
    replay(&files);
}

#[test]
fn extra_inputs_pass_the_fuzz_check() {
    let Some(dirs) = std::env::var_os("NATTER_FUZZ_REPLAY") else {
        return;
    };
    for dir in std::env::split_paths(&dirs) {
        let files = files_in(&dir);
        println!("replaying {} inputs from {}", files.len(), dir.display());
        replay(&files);
    }
}
