-- The attribute profile an admin picked for an SP (basic, oid, microsoft):
-- which names and NameFormat its attributes are released under. Rows of
-- earlier releases are basic, which is what they were sent.
ALTER TABLE saml_service_providers ADD COLUMN attribute_profile TEXT NOT NULL DEFAULT 'basic';
