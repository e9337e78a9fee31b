//! Every endpoint and every error class, over real HTTP on loopback.

use music_crs::serve::Limits;
use serde_json::{Value, json};

use super::{Server, assert_error, demo_crs};

fn user(content: &str) -> Value {
    json!({"role": "user", "content": content})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers() {
    let crs = demo_crs();
    let server = Server::start(crs.clone(), Limits::default()).await;
    let first = crs.catalog().tracks()[7].clone();

    let (status, health) = server.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["tracks"], crs.catalog().len());
    assert_eq!(health["users"], 300);
    assert_eq!(health["k"], 20);
    assert_eq!(health["retriever"], crs.retriever_name());

    // Stateless: one turn, then a second turn that carries the first.
    let ask = format!("play {} by {}", first.name(), first.artist());
    let (status, answer) = server
        .post("/v1/recommend", &json!({"messages": [user(&ask)], "k": 5}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["turn_number"], 1);
    let tracks = answer["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 5);
    assert_eq!(tracks[0]["rank"], 1);
    assert_eq!(
        tracks[0]["track_id"], first.track_id,
        "BM25 finds the named track"
    );
    assert_eq!(tracks[0]["title"], first.name());
    assert_eq!(tracks[0]["artist"], first.artist());
    assert_eq!(tracks[0]["album"], first.album());
    assert_eq!(tracks[0]["tags"], json!(first.tag_list));
    assert!(tracks[0]["score"].as_f64().unwrap() >= tracks[4]["score"].as_f64().unwrap());
    let reply = answer["reply"].as_str().unwrap();
    assert!(
        reply.contains(&first.name()),
        "grounded on the first track: {reply}"
    );
    assert!(answer.get("session_id").is_none());
    // The template reply is sound, and says so.
    assert_eq!(answer["reply_check"], json!({"status": "ok"}));
    assert_eq!(answer["reply_replaced"], false);

    let user_id = crs.user_ids().min().unwrap().to_string();
    let second = json!({
        "messages": [
            user(&ask),
            {"role": "music", "content": first.track_id},
            {"role": "assistant", "content": reply},
            user("something more upbeat"),
        ],
        "user_id": user_id,
    });
    let (status, stateless) = server.post("/v1/recommend", &second).await;
    assert_eq!(status, 200, "{stateless}");
    assert_eq!(stateless["turn_number"], 2);
    assert_eq!(
        stateless["tracks"].as_array().unwrap().len(),
        20,
        "k defaults to the method's"
    );

    // The same two turns in a session give the same answer.
    let (status, session) = server
        .post("/v1/sessions", &json!({"user_id": user_id}))
        .await;
    assert_eq!(status, 201, "{session}");
    let id = session["session_id"].as_str().unwrap().to_string();
    assert_eq!(session["user_id"], user_id.as_str());
    assert_eq!(session["messages"], json!([]));
    let path = format!("/v1/sessions/{id}/messages");
    let (status, turn1) = server.post(&path, &json!({"content": ask})).await;
    assert_eq!(status, 200, "{turn1}");
    assert_eq!(turn1["session_id"], id.as_str());
    assert_eq!(turn1["tracks"][0]["track_id"], first.track_id);
    let (status, turn2) = server
        .post(&path, &json!({"content": "something more upbeat"}))
        .await;
    assert_eq!(status, 200, "{turn2}");
    assert_eq!(turn2["turn_number"], 2);
    // The stateless route, given the session's first turn, ranks the second turn alike.
    let replay = json!({
        "messages": [
            user(&ask),
            {"role": "music", "content": turn1["tracks"][0]["track_id"]},
            {"role": "assistant", "content": turn1["reply"]},
            user("something more upbeat"),
        ],
        "user_id": user_id,
    });
    let (status, replayed) = server.post("/v1/recommend", &replay).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["tracks"], turn2["tracks"]);
    let (status, kept) = server.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(status, 200);
    let roles: Vec<&str> = kept["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "music", "assistant", "user", "music", "assistant"]
    );
    assert_eq!(kept["messages"][1]["content"], first.track_id);
    assert_eq!(kept["messages"][5]["turn_number"], 2);
    let deleted = server
        .client
        .delete(server.url(&format!("/v1/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_error(
        &server.get(&format!("/v1/sessions/{id}")).await,
        404,
        "unknown_session",
        Some("session_id"),
    );

    // What the dataset knows.
    let (status, track) = server.get(&format!("/v1/tracks/{}", first.track_id)).await;
    assert_eq!(status, 200);
    assert_eq!(track["title"], first.name());
    assert_eq!(track["release_date"], json!(first.release_date));
    let (status, users) = server.get("/v1/users?offset=10&limit=5").await;
    assert_eq!(status, 200);
    assert_eq!(users["total"], 300);
    assert_eq!(users["offset"], 10);
    let page = users["user_ids"].as_array().unwrap();
    assert_eq!(page.len(), 5);
    let mut sorted: Vec<&str> = crs.user_ids().collect();
    sorted.sort_unstable();
    assert_eq!(page[0], sorted[10]);
    let (status, profile) = server.get(&format!("/v1/users/{user_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(profile["user_id"], user_id.as_str());
    assert_eq!(
        profile["profile"]["country_code"],
        json!(crs.user(&user_id).unwrap().country_code)
    );

    // The description, the page and its files.
    let (status, spec) = server.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/v1/recommend"]["post"].is_object());
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        if path == "/" {
            let csp = response.headers()["content-security-policy"]
                .to_str()
                .unwrap();
            assert!(csp.contains("script-src 'self'"), "{csp}");
            let html = response.text().await.unwrap();
            assert!(html.contains(r#"<label for="message""#), "{html}");
        }
    }

    // Every request above is counted by route, with its latency.
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for needle in [
        r#"music_crs_http_requests_total{method="POST",route="/v1/recommend",status="200"} 3"#,
        r#"music_crs_http_requests_total{method="POST",route="/v1/sessions/{session_id}/messages",status="200"} 2"#,
        r#"music_crs_http_requests_total{method="GET",route="/v1/sessions/{session_id}",status="404"} 1"#,
        r#"music_crs_http_request_duration_seconds_count{method="POST",route="/v1/recommend"} 3"#,
        "music_crs_sessions 0",
        "music_crs_http_requests_in_flight 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_json_4xx_naming_the_field() {
    let crs = demo_crs();
    let limits = Limits {
        max_messages: 5,
        max_message_chars: 50,
        max_body_bytes: 2_000,
        ..Limits::default()
    };
    let server = Server::start(crs.clone(), limits).await;
    let track = crs.catalog().tracks()[0].track_id.clone();
    let post_raw = |path: &'static str, content_type: &'static str, body: String| {
        let request = server
            .client
            .post(server.url(path))
            .header("content-type", content_type)
            .body(body);
        async move { super::status_and_json(request.send().await.unwrap()).await }
    };

    // Malformed JSON, a wrong content type, a body over the limit.
    assert_error(
        &post_raw(
            "/v1/recommend",
            "application/json",
            "{\"messages\": [".into(),
        )
        .await,
        400,
        "malformed_json",
        Some("body"),
    );
    assert_error(
        &post_raw("/v1/recommend", "text/plain", "{}".into()).await,
        415,
        "unsupported_media_type",
        Some("Content-Type"),
    );
    let big = json!({"messages": [user(&"x".repeat(3_000))]}).to_string();
    assert_error(
        &post_raw("/v1/recommend", "application/json", big).await,
        413,
        "body_too_large",
        Some("body"),
    );

    // Wrong types, unknown fields and roles, each naming its field.
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"messages": [user("hi")], "k": "five"}),
            422,
            "invalid_field",
            "k",
        ),
        (
            json!({"messages": [user("hi")], "k": -1}),
            422,
            "invalid_field",
            "k",
        ),
        (
            json!({"messages": [user("hi")], "k": 0}),
            422,
            "invalid_field",
            "k",
        ),
        (
            json!({"messages": [user("hi")], "k": 21}),
            422,
            "invalid_field",
            "k",
        ),
        (json!({"messages": "hi"}), 422, "invalid_field", "messages"),
        (
            json!({"messages": [user("hi")], "limit": 3}),
            422,
            "invalid_field",
            "limit",
        ),
        (json!({"msgs": [user("hi")]}), 422, "invalid_field", "msgs"),
        (json!({"k": 3}), 422, "invalid_field", "body"),
        (
            json!({"messages": [{"role": "bot", "content": "hi"}]}),
            422,
            "invalid_field",
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": 7}]}),
            422,
            "invalid_field",
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user"}]}),
            422,
            "invalid_field",
            "messages[0]",
        ),
        (
            json!({"messages": []}),
            422,
            "empty_conversation",
            "messages",
        ),
        (
            json!({"messages": [user("a"), {"role": "music", "content": "no-such-track"}, user("b")]}),
            422,
            "unknown_track",
            "messages[1].content",
        ),
        (
            json!({"messages": [user("hi")], "user_id": "no-such-user"}),
            422,
            "unknown_user",
            "user_id",
        ),
        (
            json!({"messages": [user("hi"), {"role": "music", "content": track}]}),
            422,
            "invalid_conversation",
            "messages[1].role",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": "hello"}, user("hi")]}),
            422,
            "invalid_conversation",
            "messages[0].role",
        ),
        (
            json!({"messages": [user(&"é".repeat(51))]}),
            422,
            "message_too_long",
            "messages[0].content",
        ),
        (
            json!({"messages": [user(" \n ")]}),
            422,
            "empty_message",
            "messages[0].content",
        ),
        (
            json!({"messages": vec![user("again"); 6]}),
            422,
            "too_many_messages",
            "messages",
        ),
    ];
    for (body, status, code, field) in cases {
        let answer = server.post("/v1/recommend", &body).await;
        assert_error(&answer, status, code, Some(field));
    }

    // Sessions: unknown ids, bad bodies, a full conversation.
    assert_error(
        &server
            .post("/v1/sessions", &json!({"user_id": "no-such-user"}))
            .await,
        422,
        "unknown_user",
        Some("user_id"),
    );
    assert_error(
        &server
            .post("/v1/sessions/nope/messages", &json!({"content": "hi"}))
            .await,
        404,
        "unknown_session",
        Some("session_id"),
    );
    let (_, session) = server.post("/v1/sessions", &json!({})).await;
    let path = format!(
        "/v1/sessions/{}/messages",
        session["session_id"].as_str().unwrap()
    );
    assert_error(
        &server.post(&path, &json!({"text": "hi"})).await,
        422,
        "invalid_field",
        Some("text"),
    );
    assert_error(
        &server.post(&path, &json!({"content": ""})).await,
        422,
        "empty_message",
        Some("content"),
    );
    // Five messages at most, counting the new one as `/v1/recommend` would: turn 2 sees 3
    // earlier messages and its own (4), turn 3 would see 6 and its own.
    assert_eq!(server.post(&path, &json!({"content": "jazz"})).await.0, 200);
    assert_eq!(
        server.post(&path, &json!({"content": "piano"})).await.0,
        200
    );
    assert_error(
        &server.post(&path, &json!({"content": "more"})).await,
        422,
        "too_many_messages",
        Some("content"),
    );
    let deleted = server
        .client
        .delete(server.url("/v1/sessions/nope"))
        .send()
        .await
        .unwrap();
    assert_error(
        &super::status_and_json(deleted).await,
        404,
        "unknown_session",
        Some("session_id"),
    );

    // Unknown ids and bad queries on the dataset routes.
    assert_error(
        &server.get("/v1/tracks/no-such-track").await,
        404,
        "unknown_track",
        Some("track_id"),
    );
    assert_error(
        &server.get("/v1/users/no-such-user").await,
        404,
        "unknown_user",
        Some("user_id"),
    );
    assert_error(
        &server.get("/v1/users?limit=ten").await,
        400,
        "invalid_query",
        Some("limit"),
    );
    assert_error(
        &server.get("/v1/users?limit=1001").await,
        400,
        "invalid_query",
        Some("limit"),
    );
    assert_error(
        &server.get("/v1/users?page=2").await,
        400,
        "invalid_query",
        Some("page"),
    );

    // Unknown routes and methods.
    assert_error(&server.get("/v2/recommend").await, 404, "not_found", None);
    assert_error(
        &server.get("/v1/recommend").await,
        405,
        "method_not_allowed",
        None,
    );

    // None of it was a server error.
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("status=\"5"), "a 5xx was answered:\n{text}");
    assert!(text.contains("status=\"422\""), "{text}");
}
