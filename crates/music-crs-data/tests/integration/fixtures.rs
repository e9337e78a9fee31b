//! The real samples of the challenge datasets load with the expected content.

use std::collections::BTreeMap;

use music_crs_core::{Catalog, Role};
use music_crs_data::{
    SplitKind, check_tracks_in_catalog, labeled_turns, read_sessions, read_tracks, turn_contexts,
};

use crate::fixture;

#[test]
fn dev_sample_has_263_full_sessions() {
    let Some(path) = fixture("conversations-test-sample.parquet") else {
        return;
    };
    let sessions = read_sessions(&path).unwrap();
    assert_eq!(sessions.len(), 263);
    for session in &sessions {
        assert_eq!(session.messages.len(), 24, "{}", session.session_id);
        assert_eq!(session.turn_numbers(), (1..=8).collect::<Vec<u32>>());
        assert!(!session.user_id.is_empty());
        assert!(
            session
                .session_date
                .as_deref()
                .is_some_and(|d| d.len() == 10)
        );
        let profile = session
            .user_profile
            .as_ref()
            .expect("dev rows have profiles");
        assert_eq!(profile.user_id.as_deref(), Some(session.user_id.as_str()));
        assert!(session.conversation_goal.is_some());
        assert_eq!(session.goal_progress.len(), 8);
        assert_eq!(session.goal_progress[0].assessment, None);
        assert!(session.goal_progress[1].assessment.is_some());
    }
    let first = &sessions[0];
    assert_eq!(first.session_id, "98efe728-b9df-463c-8db7-11511d7ff73e");
    assert_eq!(first.session_date.as_deref(), Some("2020-03-02"));
    let profile = first.user_profile.as_ref().unwrap();
    assert_eq!(profile.age, Some(19));
    assert_eq!(profile.country_code.as_deref(), Some("TH"));
    assert_eq!(profile.user_split.as_deref(), Some("test_cold"));
    let goal = first.conversation_goal.as_ref().unwrap();
    assert_eq!(
        (goal.category.as_deref(), goal.specificity.as_deref()),
        (Some("B"), Some("LL"))
    );
    assert_eq!(first.messages[1].role, Role::Music);
    assert_eq!(
        first.messages[1].content,
        "230a1144-dd79-4e19-94cc-52355681dc2c"
    );
    assert!(first.messages[1].thought.is_some());
    // The dataset writes "" for absent thoughts; those are read as None.
    assert_eq!(first.messages[0].thought, None);
    let thoughts = sessions
        .iter()
        .flat_map(|s| &s.messages)
        .filter(|m| m.thought.is_some())
        .count();
    assert_eq!(thoughts, 3869);
    let last = sessions.last().unwrap();
    assert_eq!(last.session_id, "b3bfe743-0d01-47b3-8c5c-098d1d3f4235");
    assert_eq!(
        last.messages[22].content,
        "9c1ab2d4-5966-4805-bd74-6d0df6d50cf7"
    );

    let labeled = labeled_turns(&sessions, SplitKind::Full).unwrap();
    let turns = turn_contexts(&sessions, SplitKind::Full).unwrap();
    assert_eq!(turns.len(), 263 * 8);
    assert!(labeled.iter().all(|t| t.gold_track_id.is_some()));
    let eighth = &turns[7];
    assert_eq!(eighth.turn_number, 8);
    assert_eq!(eighth.history.len(), 21);
    assert_eq!(eighth.played_track_ids.len(), 7);
    assert_eq!(
        labeled[0].gold_track_id.as_deref(),
        Some("230a1144-dd79-4e19-94cc-52355681dc2c")
    );
    assert_eq!(SplitKind::detect(&sessions), SplitKind::Full);
}

fn turn_histogram(turns: &[music_crs_core::TurnContext]) -> BTreeMap<u32, usize> {
    let mut histogram = BTreeMap::new();
    for turn in turns {
        *histogram.entry(turn.turn_number).or_default() += 1;
    }
    histogram
}

#[test]
fn blind_a_yields_one_final_turn_per_row() {
    let Some(path) = fixture("blind-a-sample.parquet") else {
        return;
    };
    let sessions = read_sessions(&path).unwrap();
    assert_eq!(sessions.len(), 80);
    assert_eq!(SplitKind::detect(&sessions), SplitKind::Blind);
    for session in &sessions {
        assert!(!session.user_id.is_empty());
        assert!(session.user_profile.is_some());
        assert!(session.conversation_goal.is_some());
        assert_eq!(session.session_date, None);
        assert!(session.goal_progress.is_empty());
        assert_eq!(session.messages.last().unwrap().role, Role::User);
    }
    assert_eq!(
        sessions[0].session_id,
        "9c37dcd7-d7c2-4686-8541-1e37c4814a09"
    );
    let turns = turn_contexts(&sessions, SplitKind::Blind).unwrap();
    assert_eq!(turns.len(), 80);
    let labeled = labeled_turns(&sessions, SplitKind::Blind).unwrap();
    assert!(labeled.iter().all(|t| t.gold_track_id.is_none()));
    assert!(
        turns
            .iter()
            .all(|t| t.played_track_ids.len() == t.turn_number as usize - 1)
    );
    let expected: BTreeMap<u32, usize> = [
        (1, 20),
        (2, 15),
        (3, 10),
        (4, 5),
        (5, 8),
        (6, 9),
        (7, 8),
        (8, 5),
    ]
    .into();
    assert_eq!(turn_histogram(&turns), expected);
}

#[test]
fn blind_b_has_no_users_profiles_or_goals() {
    let Some(path) = fixture("blind-b-sample.parquet") else {
        return;
    };
    let sessions = read_sessions(&path).unwrap();
    assert_eq!(sessions.len(), 80);
    assert_eq!(sessions.iter().filter(|s| s.user_id.is_empty()).count(), 40);
    // Rows without a user id have every profile field null (read as no profile); the goal
    // column is of the Null type.
    for session in &sessions {
        assert_eq!(
            session.user_profile.is_none(),
            session.user_id.is_empty(),
            "{}",
            session.session_id
        );
    }
    assert!(sessions.iter().all(|s| s.conversation_goal.is_none()));
    let turns = turn_contexts(&sessions, SplitKind::Blind).unwrap();
    assert_eq!(turns.len(), 80);
    let expected: BTreeMap<u32, usize> = (1..=8).map(|t| (t, 10)).collect();
    assert_eq!(turn_histogram(&turns), expected);
    assert_eq!(turns.last().unwrap().turn_number, 8);
    assert_eq!(turns.iter().filter(|t| t.profile().is_none()).count(), 40);
}

#[test]
fn track_sample_builds_the_catalog() {
    let Some(path) = fixture("tracks-sample.parquet") else {
        return;
    };
    let tracks = read_tracks(&path).unwrap();
    assert_eq!(tracks.len(), 2520);
    let first = &tracks[0];
    assert_eq!(first.track_id, "916a3b1e-a91f-404c-91a6-4aab09742298");
    assert_eq!(first.name(), "You Make Me Feel Good - Original Mix");
    assert_eq!(first.artist(), "Satin Jackets");
    assert_eq!(first.tag_list, ["Electronic", "sam rachel king"]);
    assert_eq!(first.popularity, Some(49.0));
    assert_eq!(first.release_date.as_deref(), Some("2016-04-08"));
    assert_eq!(first.artist_id, ["2e4ff669-902e-4971-9c26-7e386b4459bf"]);
    assert_eq!(first.album_id, ["ddba77fe-6477-4b91-ae3c-97d20483bbda"]);
    // The sample has no ISRC or duration columns.
    assert!(first.isrc.is_empty() && first.duration_ms.is_none());
    let last = tracks.last().unwrap();
    assert_eq!(
        (last.track_id.as_str(), last.name(), last.popularity),
        (
            "a97aefa3-b7bf-4071-b186-0eedd56dec5b",
            "Unbreakable".to_string(),
            Some(24.0)
        )
    );
    let catalog = Catalog::new(tracks).unwrap();
    assert_eq!(catalog.len(), 2520);

    // The sample tracks are not the sessions' gold tracks: 244 of 2,104 dev gold ids are in
    // it (counted independently with pyarrow).
    let Some(dev) = fixture("conversations-test-sample.parquet") else {
        return;
    };
    let sessions = read_sessions(&dev).unwrap();
    let problems = check_tracks_in_catalog(&sessions, &catalog);
    assert_eq!(problems.len(), 2104 - 244);
    let problem = &problems[0];
    assert!(!catalog.contains(&problem.track_id));
    let session = sessions
        .iter()
        .find(|s| s.session_id == problem.session_id)
        .unwrap();
    assert!(session.messages.iter().any(|m| m.role == Role::Music
        && m.turn_number == problem.turn_number
        && m.content == problem.track_id));
}
