//! Independent readers for what the writers produce: Python's openpyxl, python-docx, python-pptx and pypdf
//! (in the venv `.ci/run` makes), and LibreOffice headless. A missing reader fails the test with the way to
//! install it: a check that silently skips would prove nothing.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python with the readers installed: `$ERRAND_TEST_PYTHON`, else `target/test-venv/bin/python3`.
pub fn python() -> PathBuf {
    let path = std::env::var_os("ERRAND_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python3"));
    assert!(
        path.exists(),
        "no Python with the office readers at {}: run `python3 -m venv target/test-venv && \
         target/test-venv/bin/pip install openpyxl python-docx python-pptx pypdf` (.ci/run does), \
         or set ERRAND_TEST_PYTHON",
        path.display()
    );
    path
}

/// Runs a Python script with arguments; its standard output, or a failure with what it printed.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let output = Command::new(python()).arg("-c").arg(script).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "the Python reader failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// LibreOffice's command, or a failure saying how to install it.
pub fn soffice() -> PathBuf {
    for candidate in ["/usr/bin/soffice", "/usr/bin/libreoffice", "/usr/lib/libreoffice/program/soffice"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "LibreOffice is missing: apt-get install libreoffice-calc-nogui libreoffice-writer-nogui \
         libreoffice-impress-nogui (.ci/run does)"
    );
}

/// Converts `input` with LibreOffice headless to `format` (`pdf`, `csv`, `xlsx`, …) in `out_dir`, and returns
/// the converted file. Each call has its own LibreOffice profile, so tests may run at once; with
/// `recalculate`, the profile tells Calc to recalculate every formula on load instead of trusting the file's
/// cached values.
pub fn soffice_convert(input: &Path, format: &str, out_dir: &Path, recalculate: bool) -> PathBuf {
    let profile = tempfile::tempdir().unwrap();
    if recalculate {
        let user = profile.path().join("user");
        std::fs::create_dir_all(&user).unwrap();
        std::fs::write(
            user.join("registrymodifications.xcu"),
            r#"<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"#,
        )
        .unwrap();
    }
    let output = Command::new(soffice())
        .arg(format!("-env:UserInstallation=file://{}", profile.path().display()))
        .args(["--headless", "--norestore", "--convert-to", format, "--outdir"])
        .arg(out_dir)
        .arg(input)
        .output()
        .unwrap();
    let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
    let extension = format.split(':').next().unwrap();
    let converted = out_dir.join(format!("{stem}.{extension}"));
    assert!(
        output.status.success() && converted.exists(),
        "LibreOffice could not convert {} to {format}:\n{}\n{}",
        input.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    converted
}

/// A small deterministic generator (xorshift) for the readers' mutation fuzzing: a failing input can be
/// reproduced from its seed.
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }

    /// Damages `bytes` (never empty) one way: flips a few bits, deletes a range, or repeats one elsewhere.
    pub fn mutate(&mut self, bytes: &mut Vec<u8>) {
        match self.below(3) {
            0 => {
                for _ in 0..1 + self.below(8) {
                    let at = self.below(bytes.len());
                    bytes[at] ^= 1 << self.below(8);
                }
            }
            1 => {
                let at = self.below(bytes.len());
                let end = (at + 1 + self.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => {
                let at = self.below(bytes.len());
                let end = (at + 1 + self.below(256)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let to = self.below(bytes.len());
                bytes.splice(to..to, copy);
            }
        }
    }
}
