// The music-crs chat page: talks to the server's /v1 sessions API. No framework, no build.
"use strict";

const TRACKS_SHOWN = 5;

const ui = {
  method: document.getElementById("method"),
  user: document.getElementById("user"),
  profile: document.getElementById("profile"),
  reset: document.getElementById("reset"),
  empty: document.getElementById("empty"),
  conversation: document.getElementById("conversation"),
  composer: document.getElementById("composer"),
  message: document.getElementById("message"),
  send: document.getElementById("send"),
  status: document.getElementById("status"),
};

let sessionId = null;
/** The session being started, if any: a message waits for it rather than starting another. */
let starting = null;
let busy = false;

/** A JSON request; throws an Error carrying the API's error code and message. */
async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) {
    return null;
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && data.error ? data.error : {};
    const error = new Error(detail.message || `${response.status} ${response.statusText}`);
    error.code = detail.code || "http_" + response.status;
    throw error;
  }
  return data;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function setStatus(text, failed) {
  ui.status.textContent = text;
  ui.status.classList.toggle("failed", Boolean(failed));
}

function setBusy(value) {
  busy = value;
  ui.send.disabled = value;
  ui.reset.disabled = value;
  ui.user.disabled = value;
}

function scrollToEnd(node) {
  node.scrollIntoView({ block: "end", behavior: "smooth" });
}

function addUserMessage(text) {
  ui.empty.hidden = true;
  const item = element("li", "message user");
  item.append(element("span", "who", "You"), element("p", "reply", text));
  ui.conversation.append(item);
  scrollToEnd(item);
}

function trackCard(track) {
  const card = element("li", "track-card");
  const title = element("h3");
  title.append(element("span", "rank", `${track.rank}.`), document.createTextNode(track.title || track.track_id));
  card.append(title);
  card.append(element("p", "artist", track.artist || "unknown artist"));
  if (track.album) {
    card.append(element("p", "album", track.album));
  }
  if (track.tags && track.tags.length) {
    const tags = element("ul", "tags");
    tags.setAttribute("aria-label", "Tags");
    for (const tag of track.tags.slice(0, 6)) {
      tags.append(element("li", null, tag));
    }
    card.append(tags);
  }
  if (track.spotify_url) {
    const link = element("a", "listen", "Listen on Spotify");
    link.href = track.spotify_url;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    card.append(link);
  }
  return card;
}

/** What the server's reply check found, in words; null for a reply that passed. */
function replyNote(answer) {
  const check = answer.reply_check || { status: "ok" };
  if (check.status === "ok" && !answer.reply_replaced) {
    return null;
  }
  let found = `was flagged (${check.status})`;
  if (check.status === "empty") {
    found = "was empty";
  } else if (check.status === "degenerate") {
    found = `repeated "${check.phrase}" ${check.times} times`;
  }
  return answer.reply_replaced
    ? `The model's own reply ${found}; this is the template reply in its place.`
    : `The model's reply ${found}.`;
}

function addAnswer(answer) {
  const item = element("li", "message assistant");
  item.append(element("span", "who", "music-crs"), element("p", "reply", answer.reply));
  const note = replyNote(answer);
  if (note) {
    item.append(element("p", "reply-note", note));
  }
  const cards = element("ol", "cards");
  cards.setAttribute("aria-label", `Recommended tracks, turn ${answer.turn_number}`);
  for (const track of answer.tracks) {
    cards.append(trackCard(track));
  }
  item.append(cards);
  ui.conversation.append(item);
  scrollToEnd(item);
}

function addError(text) {
  const item = element("li", "message error", text);
  item.setAttribute("role", "alert");
  ui.conversation.append(item);
}

function startSession() {
  starting = openSession().finally(() => {
    starting = null;
  });
  return starting;
}

async function openSession() {
  const old = sessionId;
  sessionId = null;
  if (old) {
    // Best effort: the server forgets idle sessions anyway.
    await api("DELETE", `/v1/sessions/${encodeURIComponent(old)}`).catch(() => {});
  }
  const session = await api("POST", "/v1/sessions", { user_id: ui.user.value || null });
  sessionId = session.session_id;
}

async function send(text) {
  setBusy(true);
  setStatus("Finding tracks…");
  addUserMessage(text);
  try {
    if (starting) {
      await starting.catch(() => {});
    }
    if (!sessionId) {
      await startSession();
    }
    let answer;
    try {
      answer = await postMessage(text);
    } catch (error) {
      if (error.code !== "unknown_session") {
        throw error;
      }
      // The server forgot the session (idle too long, or restarted): start a new one.
      await startSession();
      answer = await postMessage(text);
      setStatus("The earlier conversation had expired; this answer starts a new one.");
    }
    addAnswer(answer);
    if (ui.status.textContent === "Finding tracks…") {
      setStatus(`Turn ${answer.turn_number}: ${answer.tracks.length} tracks.`);
    }
  } catch (error) {
    addError(`Could not get an answer: ${error.message}`);
    setStatus("Something went wrong; try again.", true);
  } finally {
    setBusy(false);
    ui.message.focus();
  }
}

function postMessage(text) {
  const path = `/v1/sessions/${encodeURIComponent(sessionId)}/messages`;
  return api("POST", path, { content: text, k: TRACKS_SHOWN });
}

async function reset() {
  setBusy(true);
  ui.conversation.replaceChildren();
  ui.empty.hidden = false;
  try {
    await startSession();
    setStatus("New conversation.");
  } catch (error) {
    setStatus(`Could not start a conversation: ${error.message}`, true);
  } finally {
    setBusy(false);
    ui.message.value = "";
    ui.message.focus();
  }
}

async function showProfile() {
  const id = ui.user.value;
  if (!id) {
    ui.profile.textContent = "";
    return;
  }
  try {
    const user = await api("GET", `/v1/users/${encodeURIComponent(id)}`);
    const p = user.profile;
    const parts = [p.age_group || (p.age != null ? `age ${p.age}` : null), p.gender,
      p.country_name || p.country_code, p.preferred_language, p.preferred_musical_culture];
    const known = parts.filter((part) => part);
    ui.profile.textContent = known.length ? `Listener ${id}: ${known.join(" · ")}` : `Listener ${id}`;
  } catch (error) {
    ui.profile.textContent = `Listener ${id}: ${error.message}`;
  }
}

async function loadUsers() {
  const list = await api("GET", "/v1/users");
  for (const id of list.user_ids) {
    const option = element("option", null, id);
    option.value = id;
    ui.user.append(option);
  }
  if (list.total > list.user_ids.length) {
    ui.user.title = `The first ${list.user_ids.length} of ${list.total} listeners`;
  }
}

async function init() {
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.message.value.trim();
    if (!text || busy) {
      return;
    }
    ui.message.value = "";
    send(text);
  });
  ui.reset.addEventListener("click", () => reset());
  ui.user.addEventListener("change", () => {
    showProfile();
    reset();
  });
  ui.message.focus();
  try {
    const health = await api("GET", "/healthz");
    ui.method.textContent = `${health.method}: ${health.retriever} + ${health.generator}, ` +
      `${health.tracks} tracks`;
    await loadUsers();
    await startSession();
  } catch (error) {
    setStatus(`The server is not answering: ${error.message}`, true);
  }
}

init();
