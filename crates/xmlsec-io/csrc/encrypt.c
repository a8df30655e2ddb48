/*
 * XML Encryption of one element through xmlsec's own API (W3C XML
 * Encryption 1.1; the construction is xmlsec's "encrypt3" example: a
 * fresh AES session key encrypts the element, the recipient's RSA key
 * encrypts the session key into an EncryptedKey inside ds:KeyInfo).
 *
 * xmlsec and its OpenSSL backend must be initialised already: samael
 * initialises them once per process (xmlSecInit, xmlSecCryptoAppInit,
 * xmlSecCryptoInit) and the caller makes sure that happened. Nothing here
 * initialises or shuts down anything global.
 *
 * Every path returns a code (never aborts) and frees what it made.
 */

#include <limits.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>
#include <xmlsec/keys.h>
#include <xmlsec/keysmngr.h>
#include <xmlsec/templates.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmlenc.h>
#include <xmlsec/crypto.h>

/* Keep in step with `Code` in src/encrypt.rs. */
enum {
    TRUSEC_ENC_OK = 0,
    TRUSEC_ENC_BAD_ARGUMENT = 1,
    TRUSEC_ENC_PARSE = 2,
    TRUSEC_ENC_NOT_FOUND = 3,
    TRUSEC_ENC_KEY = 4,
    TRUSEC_ENC_TEMPLATE = 5,
    TRUSEC_ENC_ENCRYPT = 6,
    TRUSEC_ENC_SERIALIZE = 7
};

/* Keep in step with `Cipher` in src/encrypt.rs. */
enum { TRUSEC_AES256_GCM = 0, TRUSEC_AES256_CBC = 1, TRUSEC_AES128_GCM = 2 };

/* The first element child of the document element named {ns_href}local. */
static xmlNodePtr find_child(xmlDocPtr doc, const char *ns_href, const char *local) {
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (root == NULL) {
        return NULL;
    }
    for (xmlNodePtr n = root->children; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && n->ns != NULL &&
            xmlStrEqual(n->name, BAD_CAST local) && xmlStrEqual(n->ns->href, BAD_CAST ns_href)) {
            return n;
        }
    }
    return NULL;
}

/* Puts `node` inside a new element {ns_href}prefix:wrapper that takes its
 * place; the wrapper declares its own namespace, so it needs nothing from
 * the node it will outlive. */
static int wrap(xmlDocPtr doc, xmlNodePtr node, const char *ns_href, const char *prefix,
                const char *wrapper) {
    xmlNodePtr outer = xmlNewDocNode(doc, NULL, BAD_CAST wrapper, NULL);
    if (outer == NULL) {
        return -1;
    }
    xmlNsPtr ns = xmlNewNs(outer, BAD_CAST ns_href, BAD_CAST prefix);
    if (ns == NULL) {
        xmlFreeNode(outer);
        return -1;
    }
    xmlSetNs(outer, ns);
    xmlReplaceNode(node, outer);
    if (xmlAddChild(outer, node) == NULL) {
        xmlFreeNode(node); /* unlinked: the document no longer frees it */
        return -1;
    }
    return 0;
}

/* xmlsec declares its namespaces as default ones; give them the prefixes
 * SAML documents use (xenc:, ds:), which SPs' XPath-free parsers expect
 * too. Only declarations without a prefix are renamed; every element of
 * the template points at one of them. */
static void prefix_namespaces(xmlNodePtr node) {
    for (xmlNodePtr n = node; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        for (xmlNsPtr ns = n->nsDef; ns != NULL; ns = ns->next) {
            if (ns->prefix != NULL) {
                continue;
            }
            if (xmlStrEqual(ns->href, xmlSecEncNs)) {
                ns->prefix = xmlStrdup(BAD_CAST "xenc");
            } else if (xmlStrEqual(ns->href, xmlSecDSigNs)) {
                ns->prefix = xmlStrdup(BAD_CAST "ds");
            }
        }
        prefix_namespaces(n->children);
    }
}

/* EncryptedData (Type Element) for `cipher`, with an EncryptedKey
 * (RSA-OAEP, MGF1 with SHA-1: xmlenc#rsa-oaep-mgf1p) in its KeyInfo.
 * The caller frees it unless xmlsec has put it into the document. */
static xmlNodePtr enc_template(xmlDocPtr doc, int cipher) {
    xmlSecTransformId content = cipher == TRUSEC_AES256_CBC   ? xmlSecTransformAes256CbcId
                                : cipher == TRUSEC_AES128_GCM ? xmlSecTransformAes128GcmId
                                                              : xmlSecTransformAes256GcmId;
    xmlNodePtr data = xmlSecTmplEncDataCreate(doc, content, NULL, xmlSecTypeEncElement, NULL, NULL);
    if (data == NULL) {
        return NULL;
    }
    xmlNodePtr key_info = NULL;
    xmlNodePtr enc_key = NULL;
    if (xmlSecTmplEncDataEnsureCipherValue(data) == NULL ||
        (key_info = xmlSecTmplEncDataEnsureKeyInfo(data, NULL)) == NULL ||
        (enc_key = xmlSecTmplKeyInfoAddEncryptedKey(key_info, xmlSecTransformRsaOaepId, NULL, NULL,
                                                    NULL)) == NULL ||
        xmlSecTmplEncDataEnsureCipherValue(enc_key) == NULL) {
        xmlFreeNode(data);
        return NULL;
    }
    prefix_namespaces(data);
    return data;
}

/* A keys manager holding the recipient's public key, from its PEM
 * certificate. */
static xmlSecKeysMngrPtr recipient(const unsigned char *cert_pem, size_t cert_len) {
    xmlSecKeysMngrPtr mngr = xmlSecKeysMngrCreate();
    if (mngr == NULL) {
        return NULL;
    }
    if (xmlSecCryptoAppDefaultKeysMngrInit(mngr) < 0) {
        xmlSecKeysMngrDestroy(mngr);
        return NULL;
    }
    xmlSecKeyPtr key = xmlSecCryptoAppKeyLoadMemory(cert_pem, (xmlSecSize)cert_len,
                                                    xmlSecKeyDataFormatCertPem, NULL, NULL, NULL);
    if (key == NULL) {
        xmlSecKeysMngrDestroy(mngr);
        return NULL;
    }
    if (xmlSecCryptoAppDefaultKeysMngrAdoptKey(mngr, key) < 0) {
        xmlSecKeyDestroy(key);
        xmlSecKeysMngrDestroy(mngr);
        return NULL;
    }
    return mngr;
}

/* The document element serialised as it was read (no XML declaration);
 * the caller frees *out with trusec_xml_free. */
static int serialize(xmlDocPtr doc, char **out, size_t *out_len) {
    xmlBufferPtr buf = xmlBufferCreate();
    if (buf == NULL) {
        return TRUSEC_ENC_SERIALIZE;
    }
    int rc = TRUSEC_ENC_SERIALIZE;
    if (xmlNodeDump(buf, doc, xmlDocGetRootElement(doc), 0, 0) >= 0) {
        size_t len = (size_t)xmlBufferLength(buf);
        char *copy = (char *)xmlMalloc(len + 1);
        if (copy != NULL) {
            memcpy(copy, xmlBufferContent(buf), len);
            copy[len] = '\0';
            *out = copy;
            *out_len = len;
            rc = TRUSEC_ENC_OK;
        }
    }
    xmlBufferFree(buf);
    return rc;
}

/* Encrypts the first child {ns_href}local of the document element of
 * `xml` for the holder of `cert_pem`, and wraps the EncryptedData in a new
 * {ns_href}prefix:wrapper element. */
int trusec_encrypt_element(const char *xml, size_t xml_len, const char *ns_href,
                           const char *local, const char *prefix, const char *wrapper,
                           const unsigned char *cert_pem, size_t cert_len, int cipher, char **out,
                           size_t *out_len) {
    if (xml == NULL || ns_href == NULL || local == NULL || prefix == NULL || wrapper == NULL ||
        cert_pem == NULL || out == NULL || out_len == NULL || xml_len > INT_MAX ||
        cert_len > UINT_MAX ||
        (cipher != TRUSEC_AES256_GCM && cipher != TRUSEC_AES256_CBC && cipher != TRUSEC_AES128_GCM)) {
        return TRUSEC_ENC_BAD_ARGUMENT;
    }
    *out = NULL;
    *out_len = 0;
    /* Our own serialisation, but read as carefully as any: no network, no
     * entity substitution, no DTD loading. */
    xmlDocPtr doc = xmlReadMemory(xml, (int)xml_len, NULL, NULL, XML_PARSE_NONET);
    if (doc == NULL) {
        return TRUSEC_ENC_PARSE;
    }
    int rc = TRUSEC_ENC_OK;
    xmlSecKeysMngrPtr mngr = NULL;
    xmlSecEncCtxPtr ctx = NULL;
    xmlNodePtr tmpl = NULL;
    xmlNodePtr node = find_child(doc, ns_href, local);
    if (node == NULL) {
        rc = TRUSEC_ENC_NOT_FOUND;
        goto done;
    }
    if ((mngr = recipient(cert_pem, cert_len)) == NULL) {
        rc = TRUSEC_ENC_KEY;
        goto done;
    }
    if ((tmpl = enc_template(doc, cipher)) == NULL || wrap(doc, node, ns_href, prefix, wrapper) < 0) {
        rc = TRUSEC_ENC_TEMPLATE;
        goto done;
    }
    if ((ctx = xmlSecEncCtxCreate(mngr)) == NULL ||
        (ctx->encKey = xmlSecKeyGenerate(xmlSecKeyDataAesId, cipher == TRUSEC_AES128_GCM ? 128 : 256,
                                         xmlSecKeyDataTypeSession)) == NULL) {
        rc = TRUSEC_ENC_ENCRYPT;
        goto done;
    }
    /* Replaces `node` with the template, now filled in. */
    if (xmlSecEncCtxXmlEncrypt(ctx, tmpl, node) < 0) {
        rc = TRUSEC_ENC_ENCRYPT;
        goto done;
    }
    tmpl = NULL; /* in the document now */
    rc = serialize(doc, out, out_len);
done:
    if (tmpl != NULL) {
        xmlFreeNode(tmpl);
    }
    if (ctx != NULL) {
        xmlSecEncCtxDestroy(ctx); /* destroys encKey too */
    }
    if (mngr != NULL) {
        xmlSecKeysMngrDestroy(mngr);
    }
    xmlFreeDoc(doc);
    return rc;
}

/* Frees what trusec_encrypt_element returned. */
void trusec_xml_free(char *p) {
    if (p != NULL) {
        xmlFree(p);
    }
}
