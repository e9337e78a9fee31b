//! The phrase banks of the template generator, in the syntax of [`super::grammar`]:
//! `{slot}` is a value of the track or the request, `[a|b]` a choice, `[a|]` an optional part.
//!
//! Slots: `title`, `artist`, `artist_s` (possessive), `album`, `tag`, `tag2`, `a_tag` / `a_tag2`
//! (with their article), `year`, `decade`, `echo` (the listener's phrase), `miss` / `a_miss` (the artist
//! or genre the track misses), `echo_genre` / `echo_mood` / `echo_activity` / `echo_era` /
//! `echo_artist` (the request when it is of that one kind), `style` / `style2` (tags that name
//! a genre, so they read well side by side), `asked_genre` (a requested genre the track's tags confirm),
//! `asked_artist` (a requested artist the track is by), `prev_title` (the last track played),
//! `alt_title`, `alt_artist`, `alt_artist_s` (the runner-up). `the_artist` ("the X", or the name itself when it starts with "The"). Macros: `track`,
//! `track_bare` (without the album), `alt_track`.
//! Every claim a pattern makes must be true whenever its slots are filled: tags, years and
//! albums come from the catalog, and judgements stay the recommender's own ("my pick").

/// Ways to name the recommended track: title and artist always both appear.
pub(super) const TRACK: &str = "[{track_bare}|{track_bare}|{track_bare}|{track_bare}|\
\"{title}\" off {album} by {artist}|\"{title}\" from {artist_s} {album}]";

/// Ways to name the recommended track without its album (for patterns that name the album).
pub(super) const TRACK_BARE: &str = "[\"{title}\" by {artist}|\"{title}\" by {artist}|\
{artist_s} \"{title}\"|\"{title}\" from {artist}|{artist} with \"{title}\"|\
{the_artist} [song|track|tune|number] \"{title}\"|\
\"{title}\" ({artist})]";

/// Ways to name the runner-up.
pub(super) const ALT_TRACK: &str = "[\"{alt_title}\" by {alt_artist}|{alt_artist_s} \"{alt_title}\"|\
\"{alt_title}\" from {alt_artist}|\"{alt_title}\" ({alt_artist})]";

/// Short openers for replies that do not start with an apology.
pub(super) const OPENERS: &[&str] = &[
    "[Sure|Okay|Alright|Right|Gladly|Absolutely|Of course|Certainly|Nice|Great|Lovely|Good call|Fun one|Say no more|On it|Got it|Happy to help|Here we go|Love it|Easy|Ooh|Coming up|Noted|Sounds good|Right away|You got it|Can do|Aha|Yes|Sweet|Perfect|Sure thing|No problem|Understood|Love that|Good thinking|Deal|Great shout|Fair enough|Oh, nice|Ah, yes][!|.]",
    "[Good|Great|Nice|Fun|Lovely|Cool] [call|one|request|idea|choice][!|.]",
    "[Let's see|Hmm|One moment|Okay, so][.|...]",
];

/// The sentence that names the track when the listener's request is known. `{echo}` is a noun
/// phrase for any kind; the `echo_*` slots hold one kind each, in the grammar that kind needs.
pub(super) const ECHO_CORES: &[&str] = &[
    "[For|Since you asked for|To match|If you're after] {echo}, [I'd|I would] [go with|suggest|recommend|pick|reach for|point you to|put on] {track}.",
    "For your {echo} request, [I'd|I would] [go with|suggest|pick|reach for] {track}.",
    "[For|Given|If you're after|Since you want|As you asked for] {echo}, [try|spin|queue up|put on|hear|cue up|throw on|stream|sample|dig into|slip on] {track}.",
    "[For|Regarding|When it comes to] {echo}, {track} [is a strong match|is a good bet|could be the one|is my pick|gets my vote].",
    "[You asked for|You wanted|You mentioned|You're after] {echo}, so [here's|I picked|I found|I chose|try] {track}.",
    "[Looking for|After|Craving|Want|Need] {echo}? [Try|Spin|Queue up|Put on|Check out|Play|Hear|Cue up|Throw on|Stream|Sample|Dig into|Slip on|Crank up] {track}.",
    "{track} [is my pick|is my answer|could be the one|gets my vote] for {echo}.",
    "[Try|Spin|Queue up|Put on|Check out|Play|Hear|Cue up|Throw on|Stream|Sample|Dig into|Slip on|Crank up] {track} for {echo}.",
    "[With|Keeping] {echo} in mind, [here's|I picked|I chose|I landed on|I settled on] {track}.",
    "[Your request for|The idea of] {echo} [led me to|pointed me to|made me think of] {track}.",
    "[Some|A little|A dose of] {echo_genre}[, coming up|, then|]: {track}.",
    "{echo_genre} it is[.|!] [Try|Here's|Queue up|Meet] {track}.",
    "[In the mood for|Craving|Fancy|Up for] {echo_genre}? [Try|Spin|Queue up|Put on|Check out|Play|Hear|Cue up|Throw on|Stream|Sample|Dig into|Slip on|Crank up] {track}.",
    "[Keeping it|Keeping things|Going] {echo_mood}[:| with] {track}.",
    "You wanted it {echo_mood}, so [here's|I picked|I chose|try] {track}.",
    "[To keep things|To make it] {echo_mood}, [try|here's|I'd pick|I'd put on] {track}.",
    "[For|To soundtrack|To go with] {echo_activity}, [try|spin|queue up|put on|hear|cue up|throw on|stream|sample|dig into|slip on] {track}.",
    "{track} [is my pick|gets my vote|is my suggestion] for {echo_activity}.",
    "[Music|A soundtrack|Something] for {echo_activity}? [Try|Here's|Queue up] {track}.",
    "[Back to|Off to|Heading to|A trip to] the {echo_era}[:| with] {track}.",
    "You asked for the {echo_era}, so [here's|I picked|try] {track}.",
    "[More|Sticking with|Staying with|Here's more] {echo_artist}: \"{title}\"[| next| for you].",
    "[You asked for|You wanted|You named] {echo_artist}, so [here's|I picked|try] \"{title}\".",
    "{echo_artist} it is[:| again:| then:] \"{title}\".",
];

/// The sentence that names the track when there is no phrase to echo (or a miss was owned).
pub(super) const PLAIN_CORES: &[&str] = &[
    "[Try|Spin|Queue up|Put on|Check out|Play|Hear|Cue up|Throw on|Stream|Sample|Dig into|Slip on|Crank up] {track}[| next| now| first].",
    "Give {track} a [spin|listen|go|try|chance].",
    "[I'd|I would] [suggest|recommend|go with|reach for|pick] {track}.",
    "Let me [play|put on|queue up|suggest] {track}.",
    "[Here's|Here is|Up next,|Next up,|Next:] {track}.",
    "[My|The] [pick|choice|suggestion|recommendation] is {track}.",
    "[How about|What about|Why not|Maybe] {track}?",
    "{track} [is|could be|might be|should be] [a good|a solid|a fine|a strong|the right] [fit|pick|choice|match|next step].",
    "[You might|You may|I think you'll|I bet you'll] [enjoy|like|dig|love] {track}.",
    "[I've|I have] [lined up|queued up|picked|found|chosen] {track}.",
    "[I'm going with|Going with|I'll go with|My vote goes to] {track}.",
    "[Have a listen to|Take a listen to|Lend an ear to] {track}.",
    "[This one's for you|For you|Here you go]: {track}.",
];

/// Cores that also carry a catalog fact, so the fact need not be its own sentence.
pub(super) const FUSED_CORES: &[&str] = &[
    "[Try|Here's|Meet|Hear|Queue up|Check out] {track_bare}, {a_tag} [track|song|cut|number|tune] [from {year}|from the {decade}|off {album}|on {album}].",
    "{track_bare} [is|makes] {a_tag} [pick|choice|option|find] [from {year}|from the {decade}|off {album}|].",
    "{track_bare} [is|makes] {a_tag} [pick|choice|option|find] for {echo}.",
    "[For|To match] {echo}, [try|here's|consider] {track_bare}, {a_tag} [track|song|cut|number] [from {year}|from the {decade}|off {album}].",
    "[Released|Out] in {year}, {track} [brings|has|carries|offers] {a_tag} [feel|edge|sound|vibe|mood].",
    "[From|Off] {album}, {track_bare} [brings|has|carries|offers] {a_tag} [feel|edge|sound|vibe|mood].",
    "[A|One] {decade} [track|song|cut|number|pick]: {track}.",
    "Something with {a_tag} [feel|sound|edge]: {track_bare}.",
    "Part {style}, part {style2}: {track}.",
];

/// One sentence of catalog facts: tags, era, album.
pub(super) const DETAILS: &[&str] = &[
    "[Tagged|Filed under|Listed as] {tag}[| and {tag2}].",
    "[It's|This is] {a_tag} [track|song|cut|number|tune][| from {year}| from the {decade}| off {album}].",
    "[Expect|It has|It carries] {a_tag} [feel|vibe|flavour|edge|mood|sound].",
    "[Listeners|Fans|People] [tag it|call it|file it under] {tag}[| and {tag2}].",
    "The {tag} [side|streak|edge] [comes through|stands out|carries it|shines].",
    "Part {style}, part {style2}.",
    "It [blends|mixes|pairs] {style} [and|with] {style2}.",
    "[Out in|Released in|From] {year}[| on {album}].",
    "It [came out|dropped|arrived] in {year}.",
    "A {decade} [gem|cut|find|track].",
    "[On|Off|From] {album}[| ({year})].",
    "[It's|This one's] {style} [with|and] {style2}, [from {year}|from the {decade}|off {album}].",
    "[Expect|It has] a {decade} {tag} [sound|feel].",
    "[It sits on|It appears on|You'll find it on] {album}[| from {year}].",
    "[A|One] {tag} [pick|find|choice] from {year}.",
];

/// Said when the track matches what the listener named.
pub(super) const CONFIRMATIONS: &[&str] = &[
    "[It's|It is|That's|This is] {asked_genre}[, as asked|, as requested|, like you asked|].",
    "[Proper|Pure|Real|Solid] {asked_genre}.",
    "[Straight from|All|Pure|It's by] {asked_artist}[, as requested|, like you asked|].",
    "{asked_artist} it is[.|!]",
];

/// Said before the rest when the track is by another artist than the one named.
pub(super) const ARTIST_APOLOGIES: &[&str] = &[
    "[Sorry|Apologies|My apologies|I'm sorry], [I couldn't find|I didn't find|I don't have|I couldn't pull up] [anything|a track|a song|the right track] [by|from] {miss}[| this time| right now| just now| at the moment].",
    "[Sorry|Apologies|Unfortunately], [nothing|no track|no song] [by|from] {miss} [came up|turned up|made my list|surfaced][| this time| here].",
    "[Sorry|I'm sorry|Apologies], [this isn't|it's not|this one isn't] [by|from] {miss}[, but it's the closest I found|, but it may still work|, though it might still appeal|].",
    "[Unfortunately|Sadly], {miss} [isn't|is not] in [my picks|my results|this list][| this time| right now], [sorry|apologies|my apologies].",
    "I couldn't [match|find] {miss} [exactly|this time|here], [sorry|apologies|I'm sorry].",
];

/// Said before the rest when the track's tags plainly lack the genre asked for.
pub(super) const GENRE_APOLOGIES: &[&str] = &[
    "[Sorry|Apologies|I'm sorry|My apologies], [this one|it|this track|my pick] [isn't|is not] [really|strictly|quite|exactly|entirely|] {miss}[, but it may still work|, but it might still suit you|, though it could still appeal|, but give it a chance|].",
    "[Fair warning|Heads up|To be honest], [and sorry|and apologies|sorry]: [it's|this is|the track is] not [quite|strictly|really|] {miss}.",
    "[Sorry|Apologies], my [search|results|pick] [missed|didn't quite hit|fell short of] the {miss} mark[| a little| a bit| this time].",
    "[I'm sorry|Sorry|Apologies], I couldn't find {a_miss} [track|song|pick][| this time| right now| that fits].",
];

/// A second suggestion.
pub(super) const ALTERNATIVES: &[&str] = &[
    "[Or|Or try|Also try|Failing that, try|Backup:|Runner-up:|Also good:|Close second:] {alt_track}.",
    "{alt_track} [is close behind|is a close second|is also worth a spin|is another option|is my backup].",
    "[I also considered|Another candidate is] {alt_track}.",
];

/// Said when the last played track is known: ties the pick to the conversation.
pub(super) const FOLLOW_UPS: &[&str] = &[
    "[After|Following|To follow] \"{prev_title}\", [this fits|it flows well|a good next step|a fine follow-up].",
    "[It|This] [follows|picks up from] \"{prev_title}\" [nicely|well].",
];

/// The closing invitation to go on.
pub(super) const INVITATIONS: &[&str] = &[
    "More [like this|like it|from {artist}|by {artist}|{tag}|from the {decade}|with {a_tag} [feel|sound|edge]]?",
    "[Want|Fancy|Shall I find] [more|another] [like this|from {artist}|by {artist}|from the {decade}|with {a_tag} [feel|sound|edge]]?",
    "[Another|One more] [from {artist}|{tag} pick|{tag} track|{decade} pick|like this][| next]?",
    "[Stay with|Stick with|Keep to] [{artist}|the {decade}|this [sound|mood|lane]][| or switch| or move on]?",
    "[Something older|Something newer|Softer|Louder|Calmer|Livelier|Darker|Brighter|Faster|Slower] next?",
    "[How does it land|Does it fit|Good fit|Close enough|Is that close|Does it work|Hit or miss|Right direction]?",
    "[Let me know|Tell me] [how it lands|what you think|if it works|if it clicks|what's next][.|!]",
    "[What next|Where to next|What else]?",
    "[Should I|Shall I|Want me to] [keep going|keep them coming|dig deeper|look further][| in this direction| along these lines| with {tag}| in the {decade}| with {artist}]?",
];

/// Replies when nothing was recommended.
pub(super) const NO_TRACK: &[&str] = &[
    "[Sorry|Apologies|I'm sorry], I couldn't find a track for {echo} [right now|this time]. [Could you tell me|Can you name|What about] an artist, a mood or an era to aim for?",
    "[Sorry|Apologies|I'm sorry], nothing in the catalog matched {echo} this time. [Can you describe it another way|Could you put it differently|Any other details I could use]?",
    "[Sorry|Apologies|I'm sorry], I couldn't find a good match this time. [Could you tell me|Can you say] a bit more about what you'd like to hear?",
    "[Sorry|Apologies|I'm sorry], I don't have a recommendation yet. Which artist, mood or era should I look for?",
];

/// Every bank, for the tests that check all patterns at once.
#[cfg(test)]
pub(super) const ALL_BANKS: &[&[&str]] = &[
    &[TRACK, TRACK_BARE, ALT_TRACK],
    OPENERS,
    ECHO_CORES,
    PLAIN_CORES,
    FUSED_CORES,
    DETAILS,
    CONFIRMATIONS,
    ARTIST_APOLOGIES,
    GENRE_APOLOGIES,
    ALTERNATIVES,
    FOLLOW_UPS,
    INVITATIONS,
    NO_TRACK,
];
