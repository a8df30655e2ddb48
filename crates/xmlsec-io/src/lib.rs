//! The one unsafe corner of TruSec: no resource is ever read by URI while
//! TruSec handles XML ([`lock_down`]), and XML Encryption through xmlsec's
//! own API ([`encrypt_element`], `csrc/encrypt.c`), which samael offers only
//! for decrypting.
//!
//! xmlsec dereferences every `ds:Reference/@URI` through its own table of
//! IO callbacks (files, HTTP, FTP), and libxml2 — under XSLT `document()`,
//! external entities, XInclude — through its table of input callbacks.
//! samael leaves both tables at their defaults and exposes no switch, so an
//! unauthenticated SAML message could make the IdP fetch URLs or read
//! `/dev/zero` before any signature is checked. TruSec only ever parses
//! XML from memory and only verifies same-document references, so it needs
//! neither table: [`lock_down`] empties xmlsec's and replaces libxml2's with
//! one entry that matches nothing (an empty libxml2 table is refilled with
//! the defaults on the next lookup; a table that has an entry is not).
//!
//! Call it once xmlsec is initialised (`xmlSecInit` fills xmlsec's table),
//! before any untrusted XML is handled; `trusec_saml` does, through its XML
//! worker pool. The tables are process-wide, which is the point.

use std::ffi::{c_char, c_int, c_void};
use std::sync::OnceLock;

mod encrypt;

pub use encrypt::{Cipher, EncryptError, KEY_TRANSPORT, Target, encrypt_element};

/// The outcome of the one [`lock_down`].
static DONE: OnceLock<Result<(), LockDownFailed>> = OnceLock::new();

/// Whether [`lock_down`] ran and succeeded (so xmlsec is initialised too).
fn locked_down() -> bool {
    matches!(DONE.get(), Some(Ok(())))
}

#[link(name = "xmlsec1")]
#[expect(unsafe_code, reason = "declaring two xmlsec C functions")]
unsafe extern "C" {
    /// xmlsec/io.h: removes every registered IO callback.
    fn xmlSecIOCleanupCallbacks();
}

type MatchFn = unsafe extern "C" fn(*const c_char) -> c_int;
type OpenFn = unsafe extern "C" fn(*const c_char) -> *mut c_void;
type ReadFn = unsafe extern "C" fn(*mut c_void, *mut c_char, c_int) -> c_int;
type CloseFn = unsafe extern "C" fn(*mut c_void) -> c_int;

#[link(name = "xml2")]
#[expect(unsafe_code, reason = "declaring two libxml2 C functions")]
unsafe extern "C" {
    /// libxml/xmlIO.h: clears the input-callback table.
    fn xmlCleanupInputCallbacks();
    /// libxml/xmlIO.h: adds an entry; returns its index, or -1.
    fn xmlRegisterInputCallbacks(m: MatchFn, o: OpenFn, r: ReadFn, c: CloseFn) -> c_int;
}

/// Matches no URI, so no resource is ever opened.
extern "C" fn match_nothing(_uri: *const c_char) -> c_int {
    0
}

extern "C" fn open_nothing(_uri: *const c_char) -> *mut c_void {
    std::ptr::null_mut()
}

extern "C" fn read_nothing(_ctx: *mut c_void, _buf: *mut c_char, _len: c_int) -> c_int {
    -1
}

extern "C" fn close_nothing(_ctx: *mut c_void) -> c_int {
    0
}

/// The input-callback table could not be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockDownFailed;

impl std::fmt::Display for LockDownFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("could not switch off libxml2's input callbacks")
    }
}

impl std::error::Error for LockDownFailed {}

/// Empties xmlsec's IO-callback table and leaves libxml2 one that matches
/// nothing. Runs once per process; later calls return the first outcome.
///
/// # Errors
/// [`LockDownFailed`] when libxml2 refuses the replacement entry.
pub fn lock_down() -> Result<(), LockDownFailed> {
    *DONE.get_or_init(|| {
        #[expect(
            unsafe_code,
            reason = "C calls without arguments or with static function pointers; the \
                      tables have no locks of their own, so this runs once, under the \
                      OnceLock, before the caller hands any XML to either library"
        )]
        let registered = unsafe {
            xmlSecIOCleanupCallbacks();
            xmlCleanupInputCallbacks();
            xmlRegisterInputCallbacks(match_nothing, open_nothing, read_nothing, close_nothing)
        };
        if registered < 0 {
            return Err(LockDownFailed);
        }
        Ok(())
    })
}
