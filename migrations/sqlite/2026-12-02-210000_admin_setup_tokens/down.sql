DROP TABLE admin_setup_tokens;
