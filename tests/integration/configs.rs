//! Every config shipped in `config/` parses and validates; the default one is the built-in
//! default.

use music_crs::CrsConfig;
use music_crs::config::{DEFAULT_CONFIG_PATH, QueryRenderParams, RetrieverConfig, RetrieverKind};
use music_crs_generate::GeneratorConfig;

#[test]
fn every_shipped_config_parses_and_validates() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("config").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let config = CrsConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                path.file_stem().unwrap().to_string_lossy(),
                config.tid,
                "{}: the tid names the file",
                path.display()
            );
            config.dataset.to_spec().unwrap();
            names.push(config.tid);
        }
    }
    names.sort();
    for required in [
        "random",
        "popularity",
        "bm25_template",
        "bm25_llama_testset",
        "bm25_llama_blindset",
        "bert_llama_testset",
        "bert_llama_blindset",
        "demo_bm25_smollm2",
        "demo_bert_template",
        "demo_channels_fusion",
        "demo_ranked",
        "challenge_ranked",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "config/{required}.toml is missing"
        );
    }
}

#[test]
fn default_config_file_is_the_built_in_default() {
    let shipped = CrsConfig::load(DEFAULT_CONFIG_PATH).unwrap();
    assert_eq!(shipped, CrsConfig::default());
}

#[test]
fn baseline_configs_use_the_official_recipe() {
    for name in [
        "bm25_llama_testset",
        "bm25_llama_blindset",
        "bm25_llama_blindset_b",
    ] {
        let config = CrsConfig::load(format!("config/{name}.toml")).unwrap();
        assert_eq!(config.retriever.kind(), RetrieverKind::Bm25);
        let RetrieverConfig::Bm25(bm25) = &config.retriever else {
            panic!("{name}: {:?}", config.retriever);
        };
        assert_eq!(bm25.fields, music_crs_core::TrackField::BASELINE);
        assert!(!bm25.exclude_played);
        assert!(bm25.query.release_date_as_characters);
        assert_eq!(bm25.query, QueryRenderParams::baseline_exact());
        let GeneratorConfig::Llama(llama) = &config.generator else {
            panic!("{name}: not a llama generator");
        };
        assert_eq!(
            llama.model,
            music_crs_generate::ModelSource::Hub {
                repo: "meta-llama/Llama-3.2-1B-Instruct".into(),
                revision: None
            }
        );
    }
    let bert = CrsConfig::load("config/bert_llama_testset.toml").unwrap();
    let RetrieverConfig::Bert(bert) = &bert.retriever else {
        panic!("{:?}", bert.retriever);
    };
    assert_eq!(bert.model, "bert-base-uncased");
}

#[test]
fn ranker_configs_share_the_ablation_channels() {
    let names = |config: &CrsConfig| -> Vec<String> {
        let channels = match &config.retriever {
            RetrieverConfig::Channels(c) => &c.channels,
            RetrieverConfig::Ranked(c) => &c.channels,
            other => panic!("{other:?}"),
        };
        channels.iter().map(|c| c.name.clone()).collect()
    };
    let fusion = CrsConfig::load("config/demo_channels_fusion.toml").unwrap();
    let demo = CrsConfig::load("config/demo_ranked.toml").unwrap();
    let challenge = CrsConfig::load("config/challenge_ranked.toml").unwrap();
    assert_eq!(fusion.retriever.kind(), RetrieverKind::Channels);
    assert_eq!(demo.retriever.kind(), RetrieverKind::Ranked);
    assert_eq!(challenge.retriever.kind(), RetrieverKind::Ranked);
    assert_eq!(names(&demo).len(), 13);
    assert_eq!(names(&fusion), names(&demo));
    assert_eq!(names(&challenge), names(&demo));
    assert!(!names(&demo).iter().any(|n| n == "bm25_baseline"));
    assert_eq!(
        demo.retriever.ranker_model_path().unwrap(),
        std::path::Path::new("exp/models/demo_ranked.json")
    );
    assert_eq!(
        challenge.retriever.ranker_model_path().unwrap(),
        std::path::Path::new("exp/models/challenge_ranked.json")
    );
    // Trained on the challenge's train split, evaluated on its test split (the dev set).
    let spec = challenge.dataset.to_spec().unwrap();
    assert_eq!(
        spec.conversations.source,
        "talkpl-ai/TalkPlayData-Challenge-Dataset"
    );
    assert_eq!(spec.conversations.split, "test");
    let needs = challenge.retriever.needs();
    assert_eq!(needs.split.unwrap().split, "train");
    assert!(spec.track_embeddings.is_some() && spec.user_embeddings.is_some());
    let (tracks, users) = (needs.track_embeddings, needs.user_embeddings);
    assert_eq!(tracks.len(), 6, "{tracks:?}");
    assert_eq!(users, ["cf-bpr"]);
}
