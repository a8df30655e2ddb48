DROP INDEX saml_idp_keys_environment_idx;
DROP INDEX signing_keys_environment_idx;
DELETE FROM saml_idp_keys WHERE environment_id <> 'env_live';
DELETE FROM signing_keys WHERE environment_id <> 'env_live';
ALTER TABLE saml_idp_keys DROP COLUMN environment_id;
ALTER TABLE signing_keys DROP COLUMN environment_id;
