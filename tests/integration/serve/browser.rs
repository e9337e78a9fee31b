//! The web page in headless Chromium: pick a listener, type a message and press Enter, see
//! the reply and track cards, continue, check the layout at phone width, reset by keyboard,
//! and see the notes of replies the reply check flagged. Any console error, uncaught exception or failed load fails the test. Screenshots go to
//! `<target dir>/serve/`.

use std::path::PathBuf;

use music_crs::serve::Limits;
use serde_json::json;

use super::cdp::{Browser, find_chromium};
use super::{Server, demo_crs};

/// Where the screenshots go: `serve/` in the Cargo target directory.
fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .map_or(tmp.clone(), |target| target.join("serve"))
}

fn require_browser() -> bool {
    std::env::var("MUSIC_CRS_REQUIRE_SHARED").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_in_headless_chromium() {
    let Some(chromium) = find_chromium() else {
        assert!(
            !require_browser(),
            "no Chromium found (install Debian's `chromium`, or set CHROMIUM) and \
             MUSIC_CRS_REQUIRE_SHARED=1 requires the browser test"
        );
        println!("skipped: no Chromium on PATH (apt-get install chromium, or set CHROMIUM)");
        return;
    };
    let crs = demo_crs();
    let server = Server::start(crs.clone(), Limits::default()).await;
    let browser = Browser::launch(&chromium).await;
    browser.navigate(&server.url("/")).await;
    browser
        .wait_for(
            "document.getElementById('user').options.length > 300 \
             && document.getElementById('method').textContent.includes('bm25')",
            "the method and the listeners are shown",
        )
        .await;
    // Every control has a label, and the message box has the focus.
    assert_eq!(
        browser
            .eval(
                "[...document.querySelectorAll('input, select, textarea')]\
                 .every(e => e.labels && e.labels.length > 0)"
            )
            .await,
        json!(true)
    );
    assert_eq!(browser.eval("document.activeElement.id").await, "message");
    browser.press("Tab", false).await;
    assert_eq!(browser.eval("document.activeElement.id").await, "send");
    browser.press("Tab", true).await;
    assert_eq!(browser.eval("document.activeElement.id").await, "message");

    // A listener from the dataset: the conversation restarts as them, with their profile.
    let user_id = browser
        .eval(
            "(() => { const s = document.getElementById('user'); s.selectedIndex = 3; \
             s.dispatchEvent(new Event('change')); return s.value; })()",
        )
        .await;
    let user_id = user_id.as_str().unwrap().to_string();
    assert!(crs.user(&user_id).is_some(), "{user_id}");
    browser
        .wait_for(
            &format!(
                "document.getElementById('profile').textContent.includes({}) \
                 && !document.getElementById('send').disabled",
                json!(user_id)
            ),
            "the listener's profile is shown",
        )
        .await;

    // Type a message and press Enter: a reply and five track cards.
    let track = crs.catalog().tracks()[42].clone();
    let first_message = format!("play {} by {}", track.name(), track.artist());
    browser
        .eval("document.getElementById('message').focus()")
        .await;
    browser.type_text(&first_message).await;
    browser.press("Enter", false).await;
    browser
        .wait_for(
            "document.querySelectorAll('.message.assistant').length === 1",
            "the first answer shows",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.querySelectorAll('.message.assistant .track-card').length")
            .await,
        5
    );
    let first_card = browser
        .eval("document.querySelector('.track-card h3').textContent")
        .await;
    assert_eq!(
        first_card,
        format!("1.{}", track.name()),
        "the named track comes first"
    );
    let card_text = browser
        .eval("document.querySelector('.track-card').textContent")
        .await;
    assert!(
        card_text.as_str().unwrap().contains(&track.artist()),
        "{card_text}"
    );
    let reply = browser
        .eval("document.querySelector('.message.assistant .reply').textContent")
        .await;
    assert!(reply.as_str().unwrap().contains(&track.name()), "{reply}");
    assert_eq!(
        browser
            .eval("document.getElementById('message').value")
            .await,
        ""
    );
    assert_eq!(browser.eval("document.activeElement.id").await, "message");

    // Continue the conversation.
    browser.type_text("something more upbeat, please").await;
    browser.press("Enter", false).await;
    browser
        .wait_for(
            "document.querySelectorAll('.message.assistant').length === 2",
            "the second answer shows",
        )
        .await;
    let label = browser
        .eval("document.querySelectorAll('.cards')[1].getAttribute('aria-label')")
        .await;
    assert!(label.as_str().unwrap().ends_with("turn 2"), "{label}");
    assert_eq!(
        browser
            .eval("document.querySelectorAll('.message.user').length")
            .await,
        2
    );
    let dir = screenshot_dir();
    browser.screenshot(&dir.join("page-desktop.png")).await;

    // Phone width: one column of cards and nothing wider than the screen.
    browser.resize(390, 844, true).await;
    browser
        .wait_for("window.innerWidth === 390", "the phone viewport applies")
        .await;
    assert_eq!(
        browser
            .eval("document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        json!(true),
        "the page scrolls sideways at phone width"
    );
    let columns = browser
        .eval(
            "getComputedStyle(document.querySelector('.cards')).gridTemplateColumns\
             .split(' ').length",
        )
        .await;
    assert_eq!(columns, 1);
    browser.screenshot(&dir.join("page-phone.png")).await;

    // Reset by keyboard: the conversation empties and the message box gets the focus back.
    browser
        .eval("document.getElementById('reset').focus()")
        .await;
    browser.press("Enter", false).await;
    browser
        .wait_for(
            "document.querySelectorAll('#conversation li').length === 0 \
             && !document.getElementById('empty').hidden \
             && document.activeElement.id === 'message' \
             && !document.getElementById('send').disabled",
            "the conversation resets",
        )
        .await;
    browser.type_text("a new start").await;
    browser.press("Enter", false).await;
    browser
        .wait_for(
            "document.querySelectorAll('.message.assistant').length === 1",
            "the new conversation answers",
        )
        .await;
    let label = browser
        .eval("document.querySelector('.cards').getAttribute('aria-label')")
        .await;
    assert!(label.as_str().unwrap().ends_with("turn 1"), "{label}");

    // A reply that passed the check carries no note; a flawed one says what the check
    // found, and whether the template reply stands in for it (answers as the API gives
    // them, shown by the page's own function).
    assert_eq!(
        browser
            .eval("document.querySelectorAll('.reply-note').length")
            .await,
        0
    );
    let note_of = |answer: serde_json::Value| {
        format!(
            "(() => {{ addAnswer({answer}); \
             return [...document.querySelectorAll('.reply-note')].pop().textContent; }})()"
        )
    };
    let replaced = browser
        .eval(&note_of(json!({
            "turn_number": 2, "reply": "Here is a track.", "tracks": [],
            "reply_check": {"status": "empty"}, "reply_replaced": true,
        })))
        .await;
    assert_eq!(
        replaced,
        "The model's own reply was empty; this is the template reply in its place."
    );
    let kept = browser
        .eval(&note_of(json!({
            "turn_number": 3, "reply": "so good so good so good", "tracks": [],
            "reply_check": {"status": "degenerate", "kind": "loop", "phrase": "so good",
                            "times": 3, "covered_tokens": 6, "reply_tokens": 6},
            "reply_replaced": false,
        })))
        .await;
    assert_eq!(kept, "The model's reply repeated \"so good\" 3 times.");

    let problems = browser.problems();
    assert!(problems.is_empty(), "the page logged errors: {problems:#?}");
    println!("browser test passed; screenshots in {}", dir.display());
}
