-- Expand: the SP flags as real booleans, next to the 0/1 BIGINT columns of
-- 2026-11-27-000003_saml and filled from them. New code reads only the new
-- columns and writes both. Until a contract migration drops the BIGINT
-- columns (see README.md), these triggers copy them into the new ones on
-- every write, so an SP that an instance of the previous release creates
-- or updates during a rolling upgrade reads the same on every instance.
ALTER TABLE saml_service_providers ADD COLUMN signs_response BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE saml_service_providers ADD COLUMN signs_assertion BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE saml_service_providers ADD COLUMN requires_signed_authn_requests BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE saml_service_providers SET
    signs_response = sign_response <> 0,
    signs_assertion = sign_assertion <> 0,
    requires_signed_authn_requests = want_authn_requests_signed <> 0;

CREATE TRIGGER saml_sp_flags_after_insert AFTER INSERT ON saml_service_providers
BEGIN
    UPDATE saml_service_providers SET
        signs_response = NEW.sign_response <> 0,
        signs_assertion = NEW.sign_assertion <> 0,
        requires_signed_authn_requests = NEW.want_authn_requests_signed <> 0
    WHERE id = NEW.id;
END;

CREATE TRIGGER saml_sp_flags_after_update
AFTER UPDATE OF sign_response, sign_assertion, want_authn_requests_signed ON saml_service_providers
BEGIN
    UPDATE saml_service_providers SET
        signs_response = NEW.sign_response <> 0,
        signs_assertion = NEW.sign_assertion <> 0,
        requires_signed_authn_requests = NEW.want_authn_requests_signed <> 0
    WHERE id = NEW.id;
END;
