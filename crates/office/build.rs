//! Deflates the fonts PDF reports are typeset with (Typst's own: Libertinus Serif, New Computer Modern and its
//! math face, DejaVu Sans Mono) into `OUT_DIR`, so the binary carries 6.4 MB of compressed fonts instead of
//! 9.7 MB of raw ones. `src/pdf.rs` includes `fonts.rs`, written here, and inflates the fonts once, on the
//! first report a process writes.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::PathBuf;

fn main() -> io::Result<()> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or_else(|| io::Error::other("cargo sets no OUT_DIR"))?);
    let mut list = String::from("&[\n");
    for (index, font) in typst_assets::fonts().enumerate() {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(font)?;
        std::fs::write(out.join(format!("font{index}.zlib")), encoder.finish()?)?;
        let _ =
            writeln!(list, "    (include_bytes!(concat!(env!(\"OUT_DIR\"), \"/font{index}.zlib\")), {}),", font.len());
    }
    list.push(']');
    std::fs::write(out.join("fonts.rs"), list)?;
    println!("cargo::rerun-if-changed=build.rs");
    Ok(())
}
