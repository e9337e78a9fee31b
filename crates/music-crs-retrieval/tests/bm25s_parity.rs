//! Parity with the official baseline on real data in `../shared/fixtures/bm25/`: bm25s 0.3.16's
//! top-20 for 789 real conversation queries over 2,520 real catalog documents, and the
//! baseline's query text for a real conversation.

use std::collections::HashMap;
use std::sync::Arc;

use music_crs_core::shared::shared_path;
use music_crs_core::{Catalog, Message, Role, Session, Track};
use music_crs_retrieval::{Bm25Index, Bm25Params, QueryRenderParams, QueryRenderer};
use serde::Deserialize;

#[derive(Deserialize)]
struct Doc {
    id: String,
    text: String,
}

#[derive(Deserialize)]
struct Hits {
    id: String,
    hits: Vec<(String, f32)>,
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &std::path::Path) -> Vec<T> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Tolerance on scores: the fixture rounds bm25s's float32 scores to 5 decimals.
const SCORE_TOLERANCE: f32 = 1e-4;

#[test]
fn top20_matches_bm25s_on_the_real_fixture() {
    let Some(dir) = shared_path("fixtures/bm25") else {
        return;
    };
    let corpus: Vec<Doc> = read_jsonl(&dir.join("corpus.jsonl"));
    let queries: Vec<Doc> = read_jsonl(&dir.join("queries.jsonl"));
    let expected: HashMap<String, Vec<(String, f32)>> =
        read_jsonl::<Hits>(&dir.join("expected_top20.jsonl"))
            .into_iter()
            .map(|h| (h.id, h.hits))
            .collect();
    assert_eq!(corpus.len(), 2520);
    assert_eq!(queries.len(), 789);

    let index = Bm25Index::build(
        corpus.iter().map(|d| (d.id.clone(), d.text.clone())),
        Bm25Params::default(),
    )
    .unwrap();
    let position: HashMap<&str, usize> = index
        .doc_ids()
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();

    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let results = index.search_batch(&texts, 20);
    let (mut compared, mut same_id, mut tie_swaps, mut max_diff) = (0usize, 0usize, 0usize, 0f32);
    for (query, hits) in queries.iter().zip(&results) {
        let want = &expected[&query.id];
        // bm25s pads its top-20 with arbitrary zero-score documents; this index returns
        // matching documents only.
        let want_positive: Vec<&(String, f32)> = want.iter().filter(|(_, s)| *s > 0.0).collect();
        assert_eq!(
            hits.len(),
            want_positive.len(),
            "query {}: number of matching documents",
            query.id
        );
        let scores = index.scores(&query.text);
        for (rank, (got, (want_id, want_score))) in hits.iter().zip(&want_positive).enumerate() {
            compared += 1;
            let diff = (got.score - want_score).abs();
            max_diff = max_diff.max(diff);
            assert!(
                diff <= SCORE_TOLERANCE,
                "query {} rank {rank}: score {} vs bm25s {want_score}",
                query.id,
                got.score
            );
            if &got.track_id == want_id {
                same_id += 1;
            } else {
                // Allowed only where bm25s broke an exact tie another way: the document it
                // put here must have exactly this score here too.
                let theirs = scores[position[want_id.as_str()]];
                assert_eq!(
                    theirs.to_bits(),
                    got.score.to_bits(),
                    "query {} rank {rank}: {} here, bm25s has {want_id} (score {theirs} here)",
                    query.id,
                    got.track_id
                );
                tie_swaps += 1;
            }
        }
    }
    eprintln!(
        "bm25s parity: {} queries, {compared} ranked hits compared, {same_id} same id, \
         {tie_swaps} exact-tie reorderings, max |score diff| {max_diff:e}",
        queries.len()
    );
    assert!(compared > 15_000, "too few hits compared: {compared}");
}

fn fixture_conversation() -> Session {
    let turns: [(u32, Role, &str); 10] = [
        (
            1,
            Role::User,
            "I'm looking for songs with really meaningful lyrics about love and connection.",
        ),
        (1, Role::Music, "230a1144-dd79-4e19-94cc-52355681dc2c"),
        (
            1,
            Role::Assistant,
            "I hear you! If you're looking for meaningful lyrics about love and connection, I think \"I Will Spend My Whole Life Loving You\" by Kina Grannis and Imaginary Future would be perfect. It's really beautiful and heartfelt.",
        ),
        (
            2,
            Role::User,
            "This sounds really promising! The title definitely fits what I'm looking for. I'm hoping the lyrics are as meaningful and explore the emotional journey of love. Can you find more songs that have really beautiful, deep lyrics about connection and what it feels like to truly care for someone?",
        ),
        (2, Role::Music, "b699d75f-8473-44b2-9ea3-fedf4a32feb0"),
        (
            2,
            Role::Assistant,
            "I'm glad you liked the last one! For another song with really beautiful, deep lyrics about true connection and caring, I think \"Hold Me\" by The Sweeplings would be a wonderful choice. It has such a tender and intimate feel that I believe you'll find very meaningful.",
        ),
        (
            3,
            Role::User,
            "Hold Me\" is a beautiful title, and the song feels very intimate! The lyrics really do talk about caring and connection, which is great. I'm looking for even more songs that delve into the deeper, more complex, or even introspective parts of love and connection, not just the simple, happy parts. Something that tells a real emotional story.",
        ),
        (3, Role::Music, "0f67505d-433b-4706-9581-c673bc79c9f7"),
        // The dataset's own text for this reply.
        (3, Role::Assistant, "Unknown message"),
        (
            4,
            Role::User,
            "Wow, this is a really interesting choice! The title sounds like it could be about a deep realization in a relationship. I'm really hoping the lyrics dive into the more complex or introspective side of love and connection, telling a profound emotional story. Let's see if this one really hits that feeling.",
        ),
    ];
    Session {
        session_id: "98efe728-b9df-463c-8db7-11511d7ff73e".into(),
        messages: turns
            .iter()
            .map(|&(turn, role, content)| Message::new(turn, role, content))
            .collect(),
        ..Session::default()
    }
}

#[test]
fn renderer_reproduces_the_fixture_query_text() {
    let Some(path) = shared_path("fixtures/bm25/queries.jsonl") else {
        return;
    };
    let queries: Vec<Doc> = read_jsonl(&path);
    let turn = fixture_conversation().final_turn_context().unwrap();
    let id = format!("{}:{}", turn.session_id, turn.turn_number);
    let expected = &queries
        .iter()
        .find(|q| q.id == id)
        .expect("fixture query")
        .text;
    // The fixture's catalog sample holds none of the played tracks: their messages are skipped.
    let catalog =
        Arc::new(Catalog::new(vec![Track::new("other", "Some Song", "Someone")]).unwrap());
    let renderer = QueryRenderer::new(catalog, QueryRenderParams::default()).unwrap();
    assert_eq!(&renderer.render(&turn).unwrap(), expected);
    // Turn 1 is the bare first message line.
    let first = fixture_conversation().turn_contexts().unwrap().remove(0);
    let id = format!("{}:1", first.session_id);
    let expected = &queries
        .iter()
        .find(|q| q.id == id)
        .expect("fixture query")
        .text;
    assert_eq!(&renderer.render(&first).unwrap(), expected);
}

#[test]
fn renderer_writes_known_played_tracks_like_the_baseline() {
    let mut played = Track::new(
        "0f67505d-433b-4706-9581-c673bc79c9f7",
        "You Don't Know How Lucky You Are",
        "Keane",
    );
    played.album_name = vec!["Under The Iron Sea".into()];
    played.release_date = Some("2006-06-12".into());
    let catalog = Arc::new(Catalog::new(vec![played]).unwrap());
    let turn = fixture_conversation().final_turn_context().unwrap();
    let text = QueryRenderer::new(catalog, QueryRenderParams::baseline_exact())
        .unwrap()
        .render(&turn)
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(
        lines[5],
        "assistant: track_id: 0f67505d-433b-4706-9581-c673bc79c9f7, track_name: you don't know how \
         lucky you are, artist_name: keane, album_name: under the iron sea, release_date: 2, 0, 0, 6, \
         -, 0, 6, -, 1, 2"
    );
    assert_eq!(lines[6], "assistant: Unknown message");
}
