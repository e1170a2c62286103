//! The sandbox helper on its own, for this crate's tests and benchmarks (errand itself runs the helper as
//! `errand __sandbox`).

fn main() {
    std::process::exit(errand_sandbox::helper_main());
}
