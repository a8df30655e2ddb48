use serde_json::json;
use trusec_testkit::{Backend, TestApp, on_every_backend, status_json};

on_every_backend!(
    create_read_update_delete,
    list_paginates,
    bad_inputs_name_the_field,
    emails_are_unique_case_insensitively,
);

async fn create_read_update_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.secret_key;
    let (status, user) = status_json(
        app.post(
            "/v1/users",
            key,
            &json!({
                "email": "Ada@Example.com",
                "password": "correct horse battery",
                "name": "Ada Lovelace",
                "given_name": "Ada",
                "family_name": "Lovelace",
                "groups": ["admins", "eng"],
                "metadata": {"plan": "pro"}
            }),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201);
    let id = user["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("user_"));
    assert_eq!(user["email"], "Ada@Example.com");
    assert_eq!(user["groups"], json!(["admins", "eng"]));
    assert_eq!(user["metadata"], json!({"plan": "pro"}));
    assert_eq!(user["has_password"], true);
    assert_eq!(user["environment"], "env_live");
    let text = user.to_string();
    assert!(
        !text.contains("password_hash")
            && !text.contains("argon2")
            && !text.contains("correct horse")
    );

    let (status, got) = status_json(app.get(&format!("/v1/users/{id}"), key).await).await;
    assert_eq!(status, 200);
    assert_eq!(got, user);

    // PATCH: absent fields stay, null clears, values replace.
    let (status, patched) = status_json(
        app.patch(
            &format!("/v1/users/{id}"),
            key,
            &json!({"name": null, "given_name": "Augusta", "groups": ["eng"]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], serde_json::Value::Null);
    assert_eq!(patched["given_name"], "Augusta");
    assert_eq!(patched["family_name"], "Lovelace");
    assert_eq!(patched["groups"], json!(["eng"]));

    // Deleting a user revokes every session of theirs.
    let (_, session) =
        status_json(app.post("/v1/sessions", key, &json!({"user_id": id})).await).await;
    let token = session["token"].as_str().unwrap();
    let (_, verified) = status_json(
        app.post("/v1/sessions/verify", key, &json!({"token": token}))
            .await,
    )
    .await;
    assert_eq!(verified["valid"], true);
    let resp = app.delete(&format!("/v1/users/{id}"), key).await;
    assert_eq!(resp.status(), 200);
    let (_, verified) = status_json(
        app.post("/v1/sessions/verify", key, &json!({"token": token}))
            .await,
    )
    .await;
    assert_eq!(verified["valid"], false);
    let resp = app.get(&format!("/v1/users/{id}"), key).await;
    assert_eq!(resp.status(), 404);
    let resp = app.delete(&format!("/v1/users/{id}"), key).await;
    assert_eq!(resp.status(), 404);
}

async fn list_paginates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..5 {
        let resp = app
            .post(
                "/v1/users",
                &app.secret_key,
                &json!({"email": format!("u{i}@example.com")}),
            )
            .await;
        assert_eq!(resp.status(), 201);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/users?limit=2&after={a}"),
            None => "/v1/users?limit=2".to_owned(),
        };
        let (status, page) = status_json(app.get(&path, &app.secret_key).await).await;
        assert_eq!(status, 200);
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|u| u["email"].as_str().unwrap().to_owned()));
        if page["has_more"] == true {
            after = Some(page["next_cursor"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(page["next_cursor"], serde_json::Value::Null);
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "u0@example.com",
            "u1@example.com",
            "u2@example.com",
            "u3@example.com",
            "u4@example.com"
        ]
    );
    for bad in ["limit=0", "limit=101", "limit=x", "after=sess_x", "bogus=1"] {
        let (status, body) =
            status_json(app.get(&format!("/v1/users?{bad}"), &app.secret_key).await).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request");
    }
}

async fn bad_inputs_name_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.secret_key;
    let cases: [(serde_json::Value, u16, Option<&str>); 10] = [
        (json!({"password": "correct horse"}), 400, Some("email")),
        (json!({"email": 42}), 400, Some("email")),
        (
            json!({"email": "a@example.com", "pasword": "x"}),
            400,
            Some("pasword"),
        ),
        (
            json!({"email": "a@example.com", "groups": "admins"}),
            400,
            Some("groups"),
        ),
        (json!({"email": "not an email"}), 422, Some("email")),
        (
            json!({"email": "a@example.com", "password": "short"}),
            422,
            Some("password"),
        ),
        (
            json!({"email": "a@example.com", "password": "x".repeat(129)}),
            422,
            Some("password"),
        ),
        (
            json!({"email": "a@example.com", "metadata": [1, 2]}),
            422,
            Some("metadata"),
        ),
        (
            json!({"email": "a@example.com", "metadata": {"k": "v".repeat(5000)}}),
            422,
            Some("metadata"),
        ),
        (
            json!({"email": "a@example.com", "name": ""}),
            422,
            Some("name"),
        ),
    ];
    for (body, status, param) in cases {
        let (got, err) = status_json(app.post("/v1/users", key, &body).await).await;
        assert_eq!(got, status, "{body} -> {err}");
        assert_eq!(err["error"]["param"].as_str(), param, "{body} -> {err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Malformed JSON, wrong media type, oversized body.
    let resp = app
        .request(reqwest::Method::POST, "/v1/users", key)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    let (status, err) = status_json(resp).await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );
    let resp = app
        .request(reqwest::Method::POST, "/v1/users", key)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let huge = json!({"email": "a@example.com", "name": "x".repeat(70 * 1024)});
    let (status, err) = status_json(app.post("/v1/users", key, &huge).await).await;
    assert_eq!(status, 413, "{err}");
    let enormous = json!({"email": "a@example.com", "name": "x".repeat(1024 * 1024)});
    let (status, _) = status_json(app.post("/v1/users", key, &enormous).await).await;
    assert_eq!(status, 413);
    // Bad ids are 404s, never errors from the database.
    for path in [
        "/v1/users/nope",
        "/v1/users/user_01",
        "/v1/users/sess_01m8fd810wan7v3gwqj2hdr699",
    ] {
        let (status, err) = status_json(app.get(path, key).await).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(err["error"]["type"], "not_found");
    }
    // Nothing was half-written.
    let (_, page) = status_json(app.get("/v1/users", key).await).await;
    assert_eq!(page["data"], json!([]));
}

async fn emails_are_unique_case_insensitively(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("grace@example.com").await;
    let (status, err) = status_json(
        app.post(
            "/v1/users",
            &app.secret_key,
            &json!({"email": "GRACE@example.com"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(err["error"]["param"], "email");
    // The same email may exist in the isolated test environment.
    let resp = app
        .post(
            "/v1/users",
            &app.test_key,
            &json!({"email": "grace@example.com"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    // Changing another user's email onto a taken one conflicts too.
    let other = app.create_user("hopper@example.com").await;
    let (status, _) = status_json(
        app.patch(
            &format!("/v1/users/{}", other["id"].as_str().unwrap()),
            &app.secret_key,
            &json!({"email": "Grace@Example.com"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 409);
}
