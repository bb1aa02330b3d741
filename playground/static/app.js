// The playground page: polls the playground's JSON API and draws the chats. No build step.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#e17076", "#7bc862", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774", "#5a8fbb"];
const view = {
  state: null, chat: null, actor: null, seq: -1, shownSeq: -1, seen: new Map(), busy: false,
  stick: true, // keep the newest message in sight (unless the reader scrolled up)
};

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const text = await response.text();
  let data;
  try { data = JSON.parse(text); } catch { data = { ok: false, error: text }; }
  if (!response.ok && data.ok === undefined) data.ok = false;
  return data;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// Telegram's entities count UTF-16 code units, like JavaScript strings: offsets index directly.
function renderText(text, entities) {
  const opens = new Map();
  for (const e of entities || []) {
    if (!opens.has(e.offset)) opens.set(e.offset, []);
    opens.get(e.offset).push(e);
  }
  const stack = [];
  let out = "";
  const close = () => { out += stack.pop().close; };
  for (let i = 0; i <= text.length; i++) {
    while (stack.length && stack[stack.length - 1].end <= i) close();
    if (i === text.length) break;
    const starting = (opens.get(i) || []).sort((a, b) => b.length - a.length);
    for (const e of starting) {
      const [open, closing] = tags(e, text.substr(e.offset, e.length));
      out += open;
      stack.push({ end: e.offset + e.length, close: closing });
    }
    out += escapeHtml(text[i]);
  }
  while (stack.length) close();
  return out;
}

function tags(e, inner) {
  switch (e.type) {
    case "bold": return ["<b>", "</b>"];
    case "italic": return ["<i>", "</i>"];
    case "underline": return ["<u>", "</u>"];
    case "strikethrough": return ["<s>", "</s>"];
    case "code": return ["<code>", "</code>"];
    case "pre": return ["<pre>", "</pre>"];
    case "spoiler": return ['<span class="spoiler">', "</span>"];
    case "blockquote": case "expandable_blockquote": return ["<blockquote>", "</blockquote>"];
    case "text_link": return [`<a href="${escapeHtml(e.url)}" target="_blank" rel="noopener">`, "</a>"];
    case "url": return [`<a href="${escapeHtml(inner)}" target="_blank" rel="noopener">`, "</a>"];
    case "bot_command": return [`<span class="cmd" data-command="${escapeHtml(inner)}">`, "</span>"];
    default: return ["", ""];
  }
}

function avatar(el, title, id) {
  el.textContent = title.slice(0, 1);
  el.style.background = COLORS[Math.abs(id) % COLORS.length];
}

function currentChat() {
  return view.state && view.state.chats.find((c) => c.id === view.chat);
}

// ------------------------------------------------------------------ sidebar

function renderSide(state) {
  $("consultation").textContent = state.title;
  // Updated in place, item by item: an item drawn again between a mouse press and its
  // release would lose the click (the list is polled every 700 ms).
  const list = $("chats");
  const items = new Map([...list.children].map((li) => [li.dataset.chat, li]));
  const wanted = state.chats.map((chat) => {
    let li = items.get(chat.key);
    if (!li) {
      li = document.createElement("li");
      li.dataset.chat = chat.key;
      li.addEventListener("click", () => openChat(li.chatId));
    }
    li.chatId = chat.id;
    const seen = view.seen.get(chat.id) || 0;
    const fresh = chat.messages > seen && chat.id !== view.chat;
    li.className = chat.id === view.chat ? "active" : "";
    const drawn = JSON.stringify([chat.title, chat.label, chat.id, chat.messages, fresh]);
    if (li.dataset.drawn !== drawn) {
      li.dataset.drawn = drawn;
      const av = document.createElement("div");
      av.className = "avatar";
      avatar(av, chat.title, chat.id);
      const who = document.createElement("div");
      who.className = "who";
      who.innerHTML = `<div class="name">${escapeHtml(chat.title)}</div><div class="muted small">${escapeHtml(chat.label)}</div>`;
      li.replaceChildren(av, who);
      if (chat.messages) {
        const badge = document.createElement("span");
        badge.className = "badge" + (fresh ? " new" : "");
        badge.textContent = chat.messages;
        li.append(badge);
      }
    }
    return li;
  });
  const same = wanted.length === list.children.length && wanted.every((li, i) => list.children[i] === li);
  if (!same) list.replaceChildren(...wanted);
  const phases = $("phases");
  phases.replaceChildren();
  for (const phase of state.phases) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.phase = phase.id;
    const open = state.phase === phase.id || (phase.id === "after" && !state.phase && state.chosen === "after");
    b.className = open ? "open" : "";
    b.disabled = view.busy || state.status !== "running";
    const kind = { survey: "Survey", results: "Results", ideas: "Ideas", after: "After the end" }[phase.kind] || phase.kind;
    const name = `${kind}${phase.id !== phase.kind && phase.id !== "after" ? ` (${phase.id})` : ""}`;
    const dates = phase.id === "after" ? "every phase is over" : `${phase.starts} → ${phase.ends} · ${phase.title}`;
    b.innerHTML = `${open ? "● " : ""}${escapeHtml(name)}<span class="dates">${escapeHtml(dates)}</span>`;
    b.addEventListener("click", () => moveTo(phase.id));
    li.append(b);
    phases.append(li);
  }
  const status = $("status");
  status.className = "small " + (state.status === "failed" ? "failed" : state.status === "running" && !view.busy ? "" : "busy");
  status.textContent = view.busy ? "The bot restarts…" :
    state.status === "running" ? `Bot @${state.bot} running` :
    state.status === "failed" ? state.error : "The bot starts…";
  $("reset").disabled = view.busy;
}

// ------------------------------------------------------------------ chat

function openChat(id) {
  view.chat = id;
  view.shownSeq = -1;
  const chat = currentChat();
  view.actor = chat ? chat.actors[0] : null;
  renderHead();
  refresh(true);
}

function renderHead() {
  const chat = currentChat();
  if (!chat) return;
  $("chat-title").textContent = chat.title;
  $("chat-sub").textContent = chat.role === "group" ? "group · the bot posts moderation cards here" : chat.label;
  avatar($("chat-avatar"), chat.title, chat.id);
  const actorBox = $("actor-box");
  actorBox.hidden = chat.actors.length < 2;
  const select = $("actor");
  select.replaceChildren();
  for (const id of chat.actors) {
    const o = document.createElement("option");
    o.value = id;
    o.textContent = view.state.users[id] || id;
    select.append(o);
  }
  select.value = view.actor;
}

function messageNode(m) {
  const wrap = document.createElement("div");
  wrap.className = `msg ${m.from}`;
  wrap.dataset.id = m.id;
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  const chat = currentChat();
  if (chat && chat.role === "group" && m.from === "user") {
    bubble.insertAdjacentHTML("beforeend", `<div class="sender">${escapeHtml(m.sender)}</div>`);
  }
  if (m.photo) bubble.append(picture(m.photo));
  if (m.document) {
    bubble.insertAdjacentHTML("beforeend",
      `<div class="doc"><span class="icon">📄</span><div><a href="${m.document.url}" download="${escapeHtml(m.document.name)}">${escapeHtml(m.document.name)}</a>` +
      `<div class="muted small">${(m.document.size / 1024).toFixed(1)} KB</div></div></div>`);
  }
  if (m.text) {
    const t = document.createElement("div");
    t.className = "text";
    t.innerHTML = renderText(m.text, m.entities);
    bubble.append(t);
  } else if (!m.photo && !m.document) {
    bubble.insertAdjacentHTML("beforeend", `<div class="muted">[${escapeHtml(m.kind)}]</div>`);
  }
  const time = m.date ? new Date(m.date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
  bubble.insertAdjacentHTML("beforeend", `<div class="meta">${m.edited ? "edited " : ""}${time}</div>`);
  wrap.append(bubble);
  if (m.buttons && m.buttons.length) wrap.append(keyboard(m));
  return wrap;
}

function picture(src) {
  const img = document.createElement("img");
  img.src = src;
  img.alt = "photo";
  img.title = "open full size";
  img.addEventListener("load", () => { if (view.stick) scrollDown(); });
  img.addEventListener("click", () => window.open(src, "_blank", "noopener"));
  return img;
}

function scrollDown() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
}

function keyboard(m) {
  const kb = document.createElement("div");
  kb.className = "keyboard";
  for (const row of m.buttons) {
    const r = document.createElement("div");
    r.className = "row";
    for (const b of row) {
      let el;
      if (b.url) {
        el = document.createElement("a");
        el.href = b.url;
        el.target = "_blank";
        el.rel = "noopener";
        el.textContent = b.text + " ↗";
      } else {
        el = document.createElement("button");
        el.type = "button";
        el.textContent = b.text;
        el.disabled = !b.callback;
        el.addEventListener("click", () => press(el, m.id, b.text));
      }
      r.append(el);
    }
    kb.append(r);
  }
  return kb;
}

function renderMessages(data) {
  const box = $("messages");
  const previousTop = box.scrollTop;
  box.replaceChildren();
  const messages = data.messages;
  if (!messages.length) {
    box.insertAdjacentHTML("beforeend", '<div class="empty">No messages here yet.</div>');
  }
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.album && m.photo) {
      // An album: consecutive photos of one media group in one bubble, captions below.
      const group = [m];
      while (i + 1 < messages.length && messages[i + 1].album === m.album) group.push(messages[++i]);
      const node = messageNode({ ...m, photo: null, text: group.map((g) => g.text).filter(Boolean).join("\n"), entities: [] });
      const grid = document.createElement("div");
      grid.className = "album";
      for (const g of group) grid.append(picture(g.photo));
      node.querySelector(".bubble").prepend(grid);
      box.append(node);
      continue;
    }
    box.append(messageNode(m));
  }
  const chat = currentChat();
  const private_ = chat && chat.role !== "group";
  $("start").hidden = !(private_ && !messages.some((m) => m.from === "user"));
  const rk = $("reply-keyboard");
  rk.replaceChildren();
  for (const row of data.keyboard || []) {
    const r = document.createElement("div");
    r.className = "row";
    for (const label of row) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.addEventListener("click", () => send(label));
      r.append(b);
    }
    rk.append(r);
  }
  if (view.stick || view.shownSeq === -1) {
    view.stick = true;
    scrollDown();
  } else {
    box.scrollTop = previousTop; // the reader scrolled up: stay where they were
  }
}

async function refresh(force) {
  if (view.chat === null) return;
  if (!force && view.shownSeq === view.seq) return;
  const data = await api(`/api/chat/${view.chat}`);
  if (!data.messages) return;
  renderMessages(data);
  view.shownSeq = data.seq;
  const chat = currentChat();
  if (chat) view.seen.set(chat.id, data.messages.filter((m) => m.from === "bot").length);
}

// ------------------------------------------------------------------ actions

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 2500);
}

function alertBox(text) {
  $("alert-text").textContent = text;
  $("alert").hidden = false;
}

async function press(el, messageId, text) {
  el.classList.add("pending");
  const result = await api("/api/click", { chat: view.chat, actor: view.actor, message: messageId, text });
  el.classList.remove("pending");
  if (!result.ok) { toast(result.error || "No answer from the bot"); return; }
  const answer = result.answer;
  if (answer && answer.text) (answer.alert ? alertBox : toast)(answer.text);
  if (answer && answer.url) window.open(answer.url, "_blank", "noopener");
}

async function send(text) {
  if (!text || view.chat === null) return;
  await api("/api/send", { chat: view.chat, actor: view.actor, text });
  await poll();
}

async function moveTo(phase) {
  view.busy = true;
  renderSide(view.state);
  const result = await api("/api/timeline", { phase });
  view.busy = false;
  if (!result.ok) toast(result.error || "The bot did not restart");
  await poll();
}

async function reset() {
  view.busy = true;
  renderSide(view.state);
  const result = await api("/api/reset", {});
  view.busy = false;
  view.seen.clear();
  if (!result.ok) toast(result.error || "The reset failed");
  await poll();
  refresh(true);
}

async function poll() {
  try {
    const state = await api("/api/state");
    if (!state.chats) return;
    view.state = state;
    if (view.chat === null) {
      view.chat = state.chats[0].id;
      view.actor = state.chats[0].actors[0];
      renderHead();
    }
    view.seq = state.seq;
    renderSide(state);
    await refresh(false);
  } catch (error) {
    $("status").textContent = "The playground is not answering (stopped?)";
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  input.value = "";
  send(text);
});
$("start").addEventListener("click", () => send("/start"));
$("reset").addEventListener("click", reset);
$("actor").addEventListener("change", (event) => { view.actor = Number(event.target.value); });
$("messages").addEventListener("scroll", () => {
  const box = $("messages");
  view.stick = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
});
$("alert-ok").addEventListener("click", () => { $("alert").hidden = true; });
$("messages").addEventListener("click", (event) => {
  const command = event.target.closest && event.target.closest(".cmd");
  if (command) send(command.dataset.command);
});

poll();
setInterval(poll, 700);
