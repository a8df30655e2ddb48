DROP TABLE single_use_claims;
