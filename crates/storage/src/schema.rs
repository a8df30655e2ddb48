//! Diesel table definitions shared by both backends (portable types only).

diesel::table! {
    environments (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        environment_id -> Text,
        email -> Text,
        email_normalized -> Text,
        password_hash -> Nullable<Text>,
        name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        groups -> Text,
        metadata -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        environment_id -> Text,
        key_type -> Text,
        name -> Text,
        secret_hash -> Text,
        last_four -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        rotated_to -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        environment_id -> Text,
        user_id -> Text,
        token_hash -> Text,
        metadata -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        amr -> Text,
        authenticated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        seq -> BigInt,
        event_type -> Text,
        environment_id -> Nullable<Text>,
        actor_type -> Text,
        actor_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        outcome -> Text,
        data -> Text,
        created_at -> Timestamp,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::joinable!(api_keys -> environments (environment_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(users -> environments (environment_id));

diesel::allow_tables_to_appear_in_same_query!(
    environments,
    users,
    api_keys,
    sessions,
    audit_events
);

diesel::table! {
    oauth_clients (id) {
        id -> Text,
        environment_id -> Text,
        name -> Text,
        client_type -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        scopes -> Text,
        token_endpoint_auth_method -> Text,
        id_token_signed_response_alg -> Text,
        refresh_token_leeway_seconds -> BigInt,
        registered_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        resource_server -> Bool,
        token_endpoint_auth_method_chosen -> Bool,
        default_resource -> Nullable<Text>,
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        token_endpoint_auth_signing_alg -> Nullable<Text>,
        require_pushed_authorization_requests -> Bool,
        secret_sealed -> Nullable<Text>,
        application_type -> Text,
        dpop_bound_access_tokens -> Bool,
    }
}

diesel::table! {
    oauth_resources (id) {
        id -> Text,
        environment_id -> Text,
        identifier -> Text,
        name -> Text,
        scopes -> Text,
        access_token_lifetime_seconds -> Nullable<BigInt>,
        signing_alg -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    signing_keys (id) {
        id -> Text,
        algorithm -> Text,
        state -> Text,
        private_key -> Text,
        public_jwk -> Text,
        created_at -> Timestamp,
        activated_at -> Nullable<Timestamp>,
        retired_at -> Nullable<Timestamp>,
        publish_until -> Nullable<Timestamp>,
        environment_id -> Text,
    }
}

diesel::table! {
    oauth_consents (id) {
        id -> Text,
        environment_id -> Text,
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        environment_id -> Text,
        family_id -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        token_hash -> Text,
        scope -> Text,
        auth_time -> Nullable<Timestamp>,
        session_id -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        rotated_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        offline_access -> Bool,
        session_bound -> Bool,
        family_expires_at -> Nullable<Timestamp>,
        resources -> Nullable<Text>,
        amr -> Nullable<Text>,
        acr -> Nullable<Text>,
        dpop_jkt -> Nullable<Text>,
    }
}

diesel::table! {
    single_use_claims (kind, hash) {
        kind -> Text,
        hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    deployment_secrets (name) {
        name -> Text,
        sealed -> Text,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    oauth_clients,
    oauth_consents,
    oauth_resources,
    refresh_tokens,
    users
);

diesel::table! {
    saml_service_providers (id) {
        id -> Text,
        environment_id -> Text,
        entity_id -> Text,
        name -> Text,
        acs_endpoints -> Text,
        slo_endpoints -> Text,
        certificate_pem -> Nullable<Text>,
        name_id_format -> Text,
        attributes -> Text,
        sign_response -> BigInt,
        sign_assertion -> BigInt,
        want_authn_requests_signed -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        signs_response -> Bool,
        signs_assertion -> Bool,
        requires_signed_authn_requests -> Bool,
        attribute_profile -> Text,
        encryption_certificate_pem -> Nullable<Text>,
        encrypt_assertions -> Bool,
        assertion_cipher -> Text,
    }
}

diesel::table! {
    saml_idp_keys (id) {
        id -> Text,
        state -> Text,
        private_key -> Text,
        certificate_pem -> Text,
        created_at -> Timestamp,
        not_after -> Timestamp,
        environment_id -> Text,
    }
}

diesel::table! {
    user_factors (id) {
        id -> Text,
        environment_id -> Text,
        user_id -> Text,
        kind -> Text,
        secret_sealed -> Text,
        confirmed_at -> Nullable<Timestamp>,
        last_used_step -> Nullable<BigInt>,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Text,
        environment_id -> Text,
        user_id -> Text,
        code_hash -> Text,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        environment_id -> Text,
        user_id -> Text,
        credential_id -> Text,
        passkey -> Text,
        name -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    device_grants (device_code_hash) {
        device_code_hash -> Text,
        user_code_hash -> Text,
        environment_id -> Text,
        client_id -> Text,
        scope -> Text,
        resources -> Text,
        status -> Text,
        user_id -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        session_id -> Nullable<Text>,
        amr -> Nullable<Text>,
        interval_secs -> BigInt,
        last_poll_at -> Nullable<Timestamp>,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    admin_setup_tokens (token_hash) {
        token_hash -> Text,
        environment_id -> Text,
        email -> Nullable<Text>,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    pushed_authorization_requests (request_uri_hash) {
        request_uri_hash -> Text,
        environment_id -> Text,
        client_id -> Text,
        request -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
    }
}

diesel::table! {
    policies (environment_id) {
        environment_id -> Text,
        document -> Text,
        updated_at -> Timestamp,
    }
}
