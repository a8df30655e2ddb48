-- Expand: the SP flags as real booleans, next to the 0/1 BIGINT columns of
-- 2026-11-27-000003_saml and filled from them. New code reads only the new
-- columns and writes both. Until a contract migration drops the BIGINT
-- columns (see README.md), this trigger copies them into the new ones on
-- every write, so an SP that an instance of the previous release creates
-- or updates during a rolling upgrade reads the same on every instance.
ALTER TABLE saml_service_providers
    ADD COLUMN signs_response BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN signs_assertion BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN requires_signed_authn_requests BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE saml_service_providers SET
    signs_response = sign_response <> 0,
    signs_assertion = sign_assertion <> 0,
    requires_signed_authn_requests = want_authn_requests_signed <> 0;

CREATE FUNCTION saml_sp_flags_from_bigint() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.signs_response := NEW.sign_response <> 0;
    NEW.signs_assertion := NEW.sign_assertion <> 0;
    NEW.requires_signed_authn_requests := NEW.want_authn_requests_signed <> 0;
    RETURN NEW;
END
$$;

CREATE TRIGGER saml_sp_flags_from_bigint
BEFORE INSERT OR UPDATE ON saml_service_providers
FOR EACH ROW EXECUTE FUNCTION saml_sp_flags_from_bigint();
