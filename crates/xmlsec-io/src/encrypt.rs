//! XML Encryption of one element, by xmlsec (`csrc/encrypt.c`): a fresh
//! AES session key encrypts the element (AES-256-GCM, AES-128-GCM, or
//! AES-256-CBC for a recipient that asks for it), and RSA-OAEP
//! (`xmlenc#rsa-oaep-mgf1p`: MGF1 and digest SHA-1, as that algorithm
//! defines them) encrypts the session key for the holder of a certificate,
//! in an `xenc:EncryptedKey` inside the `xenc:EncryptedData`'s `ds:KeyInfo`.
//! Nothing of the construction is ours: xmlsec builds, encrypts and
//! serialises it; this side only passes strings in and copies the result out.

use std::ffi::{CString, c_char, c_int};

/// The content-encryption algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// `http://www.w3.org/2009/xmlenc11#aes256-gcm`: authenticated.
    Aes256Gcm,
    /// `http://www.w3.org/2009/xmlenc11#aes128-gcm`: authenticated, a
    /// 128-bit session key.
    Aes128Gcm,
    /// `http://www.w3.org/2001/04/xmlenc#aes256-cbc`: for recipients that
    /// cannot do GCM. Not authenticated, so only the signature inside
    /// protects the plaintext.
    Aes256Cbc,
}

impl Cipher {
    /// The algorithm's URI, as `xenc:EncryptionMethod` carries it.
    pub const fn uri(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            Self::Aes128Gcm => "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            Self::Aes256Cbc => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        }
    }

    /// The code `csrc/encrypt.c` knows it by.
    const fn code(self) -> c_int {
        match self {
            Self::Aes256Gcm => 0,
            Self::Aes256Cbc => 1,
            Self::Aes128Gcm => 2,
        }
    }
}

/// The key-transport algorithm's URI (the only one: RSA-OAEP, MGF1-SHA1).
pub const KEY_TRANSPORT: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";

/// Which element to encrypt and what to wrap the result in: the first
/// child `{namespace}element` of the document element becomes
/// `<prefix:wrapper xmlns:prefix="namespace"><xenc:EncryptedData …/></…>`.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub namespace: &'a str,
    pub element: &'a str,
    pub prefix: &'a str,
    pub wrapper: &'a str,
}

/// Why an element was not encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncryptError {
    /// [`crate::lock_down`] has not succeeded: xmlsec may not be
    /// initialised, and no XML is handled before the resolvers are off.
    NotLockedDown,
    /// An argument has a NUL byte, or the document is over 2 GiB.
    BadArgument,
    /// The document did not parse.
    Parse,
    /// The document element has no such child.
    NotFound,
    /// The certificate did not load as a PEM X.509 certificate with an
    /// RSA key.
    Key,
    /// xmlsec could not build the template or the wrapper.
    Template,
    /// xmlsec could not encrypt.
    Encrypt,
    /// The result could not be serialised, or is not UTF-8.
    Serialize,
    /// A code `csrc/encrypt.c` does not define.
    Unknown(i32),
}

impl std::fmt::Display for EncryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLockedDown => f.write_str("XML encryption before the lock-down"),
            Self::BadArgument => f.write_str("an argument has a NUL byte or is too large"),
            Self::Parse => f.write_str("the document to encrypt did not parse"),
            Self::NotFound => f.write_str("the element to encrypt is not there"),
            Self::Key => f.write_str("the recipient's certificate did not load"),
            Self::Template => f.write_str("xmlsec could not build the encryption template"),
            Self::Encrypt => f.write_str("xmlsec could not encrypt"),
            Self::Serialize => f.write_str("the encrypted document could not be serialised"),
            Self::Unknown(code) => write!(f, "xmlsec encryption failed with code {code}"),
        }
    }
}

impl std::error::Error for EncryptError {}

#[expect(unsafe_code, reason = "declaring the two functions of csrc/encrypt.c")]
unsafe extern "C" {
    fn trusec_encrypt_element(
        xml: *const c_char,
        xml_len: usize,
        ns_href: *const c_char,
        local: *const c_char,
        prefix: *const c_char,
        wrapper: *const c_char,
        cert_pem: *const u8,
        cert_len: usize,
        cipher: c_int,
        out: *mut *mut c_char,
        out_len: *mut usize,
    ) -> c_int;
    fn trusec_xml_free(p: *mut c_char);
}

fn c_string(s: &str) -> Result<CString, EncryptError> {
    CString::new(s).map_err(|_| EncryptError::BadArgument)
}

/// Encrypts `target` in `xml` for the holder of `cert_pem` (PEM X.509, RSA
/// key) and returns the document.
///
/// Runs only after [`crate::lock_down`] succeeded (which itself runs after
/// xmlsec is initialised); it is synchronous C work, so callers run it
/// where they run their other XML work.
///
/// # Errors
/// [`EncryptError`]; nothing is returned half-encrypted.
pub fn encrypt_element(
    xml: &str,
    target: &Target<'_>,
    cert_pem: &[u8],
    cipher: Cipher,
) -> Result<String, EncryptError> {
    if !crate::locked_down() {
        return Err(EncryptError::NotLockedDown);
    }
    let (ns, element, prefix, wrapper) = (
        c_string(target.namespace)?,
        c_string(target.element)?,
        c_string(target.prefix)?,
        c_string(target.wrapper)?,
    );
    let mut out: *mut c_char = std::ptr::null_mut();
    let mut out_len: usize = 0;
    #[expect(
        unsafe_code,
        reason = "every pointer is valid for the call: `xml` and `cert_pem` with their \
                  lengths, the CStrings NUL-terminated; the C side reads them, writes only \
                  `out`/`out_len`, and keeps no pointer after it returns"
    )]
    let code = unsafe {
        trusec_encrypt_element(
            xml.as_ptr().cast(),
            xml.len(),
            ns.as_ptr(),
            element.as_ptr(),
            prefix.as_ptr(),
            wrapper.as_ptr(),
            cert_pem.as_ptr(),
            cert_pem.len(),
            cipher.code(),
            &raw mut out,
            &raw mut out_len,
        )
    };
    match code {
        0 => {}
        1 => return Err(EncryptError::BadArgument),
        2 => return Err(EncryptError::Parse),
        3 => return Err(EncryptError::NotFound),
        4 => return Err(EncryptError::Key),
        5 => return Err(EncryptError::Template),
        6 => return Err(EncryptError::Encrypt),
        7 => return Err(EncryptError::Serialize),
        other => return Err(EncryptError::Unknown(other)),
    }
    if out.is_null() {
        return Err(EncryptError::Serialize);
    }
    #[expect(
        unsafe_code,
        reason = "on success the C side returned `out_len` bytes at `out`, allocated by \
                  libxml2; they are copied before `trusec_xml_free` releases them, once"
    )]
    let bytes = unsafe {
        let copy = std::slice::from_raw_parts(out.cast::<u8>(), out_len).to_vec();
        trusec_xml_free(out);
        copy
    };
    String::from_utf8(bytes).map_err(|_| EncryptError::Serialize)
}
