//! Builds `csrc/encrypt.c` against the system's xmlsec (OpenSSL backend)
//! and libxml2 — the same libraries samael links — with the defines
//! `pkg-config` gives for them (`XMLSEC_NO_SIZE_T` and the crypto backend
//! change xmlsec's types and names, so they must match the library).

fn main() {
    println!("cargo:rerun-if-changed=csrc/encrypt.c");
    let xmlsec = match pkg_config::Config::new().probe("xmlsec1-openssl") {
        Ok(lib) => lib,
        Err(e) => {
            // A build script reports by exiting; there is no caller to
            // return an error to.
            eprintln!("xmlsec1-openssl not found by pkg-config (scripts/install-deps): {e}");
            std::process::exit(1);
        }
    };
    let mut build = cc::Build::new();
    build
        .file("csrc/encrypt.c")
        .warnings(true)
        .extra_warnings(true);
    for dir in &xmlsec.include_paths {
        build.include(dir);
    }
    for (name, value) in &xmlsec.defines {
        build.define(name, value.as_deref());
    }
    build.compile("trusec_xmlsec_encrypt");
}
