//! Fitting one turn's prompt into the model's context, so that a long turn costs part of its
//! prompt rather than the whole run.
//!
//! The parts give way in a fixed order, each only once the previous one is used up: earlier
//! turns (oldest first), then the retrieved tracks of the track block (last-ranked first),
//! then the user message (cut by tokens, its start kept and the cut marked). The system
//! prompt never gives way: a context too small for it is a configuration error, caught when
//! the generator is built (see `LlamaGenerator::assemble`).
//!
//! The search is written over token counts (`needed` measures a candidate prompt), so it is
//! tested here without a model.

/// How much of each part that can give way a prompt keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kept {
    /// The most recent earlier turns kept.
    pub history_turns: usize,
    /// The best-ranked retrieved tracks kept in the track block.
    pub tracks: usize,
    /// Leading tokens of the user message kept, the cut marked; `None` keeps it whole.
    pub user_tokens: Option<usize>,
}

/// The largest prompt, no larger than `full`, whose `needed` tokens (prompt plus room for the
/// reply) are at most `limit`, trimming in the order of the module docs. `user_tokens` is the
/// length of the user message in tokens. `Ok(Err(tokens))` when even the smallest prompt
/// (no history, no track, an empty user message) needs `tokens > limit`.
pub(crate) fn fit<E>(
    full: Kept,
    user_tokens: usize,
    limit: usize,
    mut needed: impl FnMut(Kept) -> Result<usize, E>,
) -> Result<Result<Kept, usize>, E> {
    let mut kept = full;
    let mut tokens = needed(kept)?;
    while tokens > limit && kept.history_turns > 0 {
        kept.history_turns -= 1;
        tokens = needed(kept)?;
    }
    while tokens > limit && kept.tracks > 0 {
        kept.tracks -= 1;
        tokens = needed(kept)?;
    }
    if tokens <= limit {
        return Ok(Ok(kept));
    }
    let cut_to = |n: usize| Kept {
        user_tokens: Some(n),
        ..kept
    };
    let smallest = needed(cut_to(0))?;
    if smallest > limit {
        return Ok(Err(smallest));
    }
    // The most leading tokens that fit: `fits` always fits, `too_many` is known not to (the
    // whole message did not), and the prompt grows with the tokens kept.
    let (mut fits, mut too_many) = (0, user_tokens);
    while too_many - fits > 1 {
        let middle = fits + (too_many - fits) / 2;
        if needed(cut_to(middle))? <= limit {
            fits = middle;
        } else {
            too_many = middle;
        }
    }
    Ok(Ok(cut_to(fits)))
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// A prompt of additive parts: `fixed` tokens of system prompt and template, earlier turns
    /// of the given sizes (oldest first), tracks of the given sizes (best-ranked first), a user
    /// message of `user` tokens and a cut mark of 2 tokens.
    struct Sizes {
        fixed: usize,
        turns: Vec<usize>,
        tracks: Vec<usize>,
        user: usize,
    }

    impl Sizes {
        fn full(&self) -> Kept {
            Kept {
                history_turns: self.turns.len(),
                tracks: self.tracks.len(),
                user_tokens: None,
            }
        }

        fn needed(&self, kept: Kept) -> usize {
            let turns: usize = self.turns[self.turns.len() - kept.history_turns..]
                .iter()
                .sum();
            let tracks: usize = self.tracks[..kept.tracks].iter().sum();
            let user = kept.user_tokens.map_or(self.user, |n| n + 2);
            self.fixed + turns + tracks + user
        }

        /// The fitted prompt and the prompts measured on the way, in order.
        fn fit(&self, limit: usize) -> (Result<Kept, usize>, Vec<Kept>) {
            let mut tried = Vec::new();
            let fitted = fit(self.full(), self.user, limit, |kept| {
                tried.push(kept);
                Ok::<_, Infallible>(self.needed(kept))
            })
            .unwrap();
            (fitted, tried)
        }
    }

    fn sizes() -> Sizes {
        Sizes {
            fixed: 100,
            turns: vec![30, 20, 10],
            tracks: vec![15, 25],
            user: 50,
        }
    }

    #[test]
    fn a_prompt_that_fits_is_kept_whole_and_measured_once() {
        let sizes = sizes();
        let (fitted, tried) = sizes.fit(250);
        assert_eq!(fitted, Ok(sizes.full()));
        assert_eq!(tried, [sizes.full()]);
    }

    #[test]
    fn history_gives_way_first_oldest_turn_first() {
        let sizes = sizes();
        // 250 needed: dropping the 30-token oldest turn is enough.
        let (fitted, _) = sizes.fit(220);
        let expected = Kept {
            history_turns: 2,
            ..sizes.full()
        };
        assert_eq!(fitted, Ok(expected));
        assert_eq!(sizes.needed(expected), 220);
        // Every turn dropped before a track is.
        let (fitted, tried) = sizes.fit(190);
        assert_eq!(
            fitted,
            Ok(Kept {
                history_turns: 0,
                ..sizes.full()
            })
        );
        assert!(
            tried
                .iter()
                .all(|k| k.tracks == 2 && k.user_tokens.is_none())
        );
    }

    #[test]
    fn tracks_give_way_next_last_ranked_first() {
        let sizes = sizes();
        // No history: 190; without the 25-token last-ranked track: 165.
        let (fitted, tried) = sizes.fit(170);
        assert_eq!(
            fitted,
            Ok(Kept {
                history_turns: 0,
                tracks: 1,
                user_tokens: None,
            })
        );
        assert!(tried.iter().all(|k| k.user_tokens.is_none()));
        let (fitted, _) = sizes.fit(150);
        assert_eq!(
            fitted,
            Ok(Kept {
                history_turns: 0,
                tracks: 0,
                user_tokens: None,
            })
        );
    }

    #[test]
    fn the_user_message_is_cut_last_keeping_the_most_that_fits() {
        let sizes = sizes();
        // No history, no track: 100 + 50. A cut message costs its tokens plus 2.
        for limit in [102, 103, 130, 149] {
            let (fitted, tried) = sizes.fit(limit);
            let kept = fitted.unwrap();
            assert_eq!((kept.history_turns, kept.tracks), (0, 0));
            let n = kept.user_tokens.unwrap();
            assert_eq!(n, limit - 102, "limit {limit}");
            assert!(sizes.needed(kept) <= limit);
            // The search measures a handful of cuts, not every length.
            let cuts = tried.iter().filter(|k| k.user_tokens.is_some()).count();
            assert!(cuts <= 8, "{cuts} cuts measured for limit {limit}");
        }
    }

    #[test]
    fn too_small_for_the_system_prompt_reports_the_smallest_prompt() {
        let sizes = sizes();
        assert_eq!(sizes.fit(101).0, Err(102));
        let empty = Sizes {
            fixed: 100,
            turns: vec![],
            tracks: vec![],
            user: 0,
        };
        assert_eq!(empty.fit(100).0, Ok(empty.full()));
        assert_eq!(empty.fit(99).0, Err(102));
    }
}
