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
