// The simulator page: users, the chat (polled timeline), what taps send, the side panel loop.
import { errorText, getJSON, postJSON } from "./api.js";
import { byTestId, el } from "./dom.js";
import { linkedText, quickReplyChips, renderMessage } from "./messages.js";
import { renderBillable, renderFriend, renderHealth, renderOutbox, resetPanel } from "./panel.js";
import { clearRichMenu, drawRichMenu } from "./richmenu.js";
import { initTimeMachine, localNow, refreshClock } from "./timemachine.js";

const POLL_MS = 700;
const PANEL_MS = 1000;
const STATE_LABEL = { new: "未追加", friend: "友だち", blocked: "ブロック中" };
const WEEKDAYS = ["日", "月", "火", "水", "木", "金", "土"];
const PICKER_INPUT = { date: "date", time: "time", datetime: "datetime-local" };
const PICKER_FORMAT = { date: /^\d{4}-\d{2}-\d{2}$/, time: /^\d{2}:\d{2}$/, datetime: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/ };

const state = {
  users: [],
  usersKey: "",
  selected: null,
  gen: 0, // bumped on every user switch: late answers for the previous user are dropped
  since: 0, // the last timeline seq shown
  items: [],
  lastDate: null,
  lastFrom: null,
  polling: null,
  pollAgain: false,
  picker: null,
  menuKey: null, // "richMenuId|source|alias|aliases…" of the drawn rich menu ("none": the placeholder)
};

const chat = byTestId("chat");
const input = byTestId("message-input");
const sendButton = byTestId("send-button");
const quickBar = byTestId("quick-replies");
const picker = byTestId("datetime-picker");
const pickerInput = byTestId("datetime-input");
const ctx = { onAction: (action) => tap(action, "message") };

// --- feedback ---------------------------------------------------------------------------------

let toastTimer = null;
function toast(message, kind = "error") {
  const node = byTestId("toast");
  node.textContent = message;
  node.dataset.kind = kind;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    node.hidden = true;
  }, 5000);
}

function errorNote(message) {
  chat.append(el("div", { class: "note note-error", dataset: { testid: "error-note" } }, message));
  scrollToBottom();
}

/** Toast/inline note for a control-API answer: the request failed, or the bot answered non-200. */
function report(answer) {
  if (!answer.ok) {
    toast(errorText(answer));
    return false;
  }
  const status = answer.body && answer.body.status;
  if (status !== 200) {
    const why = (answer.body && answer.body.error) || "";
    const message = status
      ? `ボットがエラーを返しました (HTTP ${status})`
      : `ボットに届きませんでした${why ? `: ${why}` : ""}`;
    errorNote(message);
    toast(message);
    return false;
  }
  return true;
}

// --- users ------------------------------------------------------------------------------------

function selectedUser() {
  return state.users.find((u) => u.user_id === state.selected) || null;
}

async function refreshUsers() {
  const answer = await getJSON("/_emulator/users");
  if (!answer.ok) return;
  const users = answer.body.users || [];
  const key = JSON.stringify(users.map((u) => [u.user_id, u.name, u.state]));
  state.users = users;
  if (key !== state.usersKey) {
    state.usersKey = key;
    renderUsers();
  }
}

function userActions(user) {
  const act = (label, testid, path) =>
    el("button", { type: "button", class: `user-action user-action-${testid}`, dataset: { testid }, onclick: () => userAction(user.user_id, path) }, label);
  if (user.state === "friend") return act("ブロック", "block-button", "unfollow");
  if (user.state === "blocked") return act("ブロック解除", "unblock-button", "follow");
  return act("友だち追加", "follow-button", "follow");
}

function renderUsers() {
  const list = byTestId("user-list");
  list.replaceChildren(
    ...state.users.map((user) =>
      el(
        "li",
        {
          class: `user-item${user.user_id === state.selected ? " selected" : ""}`,
          dataset: { testid: "user-item", userId: user.user_id, state: user.state, name: user.name },
        },
        el(
          "button",
          { type: "button", class: "user-select", dataset: { testid: "user-select" }, onclick: () => select(user.user_id) },
          el("span", { class: "avatar avatar-user", "aria-hidden": "true" }, user.name.slice(0, 1)),
          // The whole name, wrapped when long, with the state below it: never cut off.
          el(
            "span",
            { class: "user-text" },
            el("span", { class: "user-name", title: user.name, dataset: { testid: "user-name" } }, user.name),
            el("span", { class: `user-state state-${user.state}`, dataset: { testid: "user-state" } }, STATE_LABEL[user.state] || user.state),
          ),
        ),
        userActions(user),
      ),
    ),
  );
  byTestId("user-list-empty").hidden = state.users.length > 0;
  updateComposer();
}

async function userAction(userId, path) {
  const answer = await postJSON(`/_emulator/users/${userId}/${path}`);
  if (userId === state.selected) hideQuickReplies();
  report(answer);
  await refreshUsers();
  if (userId !== state.selected) select(userId);
  else pollNow();
  refreshSide();
}

function updateComposer() {
  const user = selectedUser();
  const ready = Boolean(user && user.state === "friend");
  input.disabled = !ready;
  sendButton.disabled = !ready;
  input.placeholder = ready ? "メッセージを入力" : "友だち追加するとメッセージを送れます";
  const blockedNote = user && user.state === "blocked" ? "(ブロック中)" : "";
  byTestId("chat-user-name").textContent = user ? `${user.name} として会話中${blockedNote}` : "";
  let cta = byTestId("chat-cta");
  if (!cta) {
    cta = el("div", { class: "chat-cta", dataset: { testid: "chat-cta" } });
    byTestId("composer").before(cta);
  }
  cta.hidden = !user || ready;
  if (user && !ready) {
    const blocked = user.state === "blocked";
    cta.replaceChildren(
      el("span", {}, blocked ? "このアカウントをブロック中です" : `${byTestId("account-name").textContent} を友だち追加しますか?`),
      el(
        "button",
        { type: "button", class: "cta-button", dataset: { testid: "chat-follow-button" }, onclick: () => userAction(user.user_id, "follow") },
        blocked ? "ブロック解除" : "友だち追加",
      ),
    );
  }
}

function select(userId) {
  if (state.selected === userId) return;
  state.selected = userId;
  state.gen += 1;
  state.since = 0;
  state.items = [];
  state.lastDate = null;
  state.lastFrom = null;
  history.replaceState(null, "", `#${userId}`);
  chat.replaceChildren();
  hideQuickReplies();
  closePicker();
  resetPanel();
  renderOutbox([]);
  renderUsers();
  state.menuKey = null; // the next poll draws this user's menu
  showRichMenu(null);
  pollNow();
  refreshSide();
}

// --- the chat ---------------------------------------------------------------------------------

function scrollToBottom() {
  chat.scrollTop = chat.scrollHeight;
}

function dateLabel(local) {
  const [y, m, d] = local.slice(0, 10).split("-").map(Number);
  const weekday = WEEKDAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()];
  return `${y}/${String(m).padStart(2, "0")}/${String(d).padStart(2, "0")}(${weekday})`;
}

function note(text, testid = "system-note") {
  return el("div", { class: "note", dataset: { testid } }, text);
}

function userRow(item, text, extra = {}) {
  return el(
    "div",
    { class: "row row-user", dataset: { seq: item.seq } },
    el("div", { class: "meta" }, el("span", { class: "read" }, "既読"), el("time", {}, item.at_local.slice(11))),
    el("div", { class: "bubble bubble-text bubble-user", dataset: { testid: "bubble", from: "user", type: item.type, ...extra } }, linkedText(text)),
  );
}

function botRow(item) {
  const message = item.message || {};
  const content = renderMessage(message, ctx);
  content.dataset.testid = "bubble";
  content.dataset.from = "bot";
  content.dataset.type = message.type || "";
  content.dataset.via = item.via;
  if (message.type === "template" && message.template) content.dataset.template = message.template.type;
  const sender = message.sender && message.sender.name;
  const continued = state.lastFrom === "bot" && !sender;
  const account = byTestId("account-name").textContent;
  return el(
    "div",
    { class: `row row-bot${continued ? " row-cont" : ""}`, dataset: { seq: item.seq } },
    el("span", { class: "avatar avatar-bot", "aria-hidden": "true" }, (sender || account).slice(0, 1).toUpperCase()),
    el(
      "div",
      { class: "row-body" },
      continued ? null : el("div", { class: "sender" }, sender || account),
      el("div", { class: "row-line" }, content, el("div", { class: "meta" }, el("time", {}, item.at_local.slice(11)))),
    ),
  );
}

function rowFor(item) {
  if (item.from === "bot") return botRow(item);
  switch (item.type) {
    case "text":
      return userRow(item, item.text);
    case "postback":
      if (item.displayText) return userRow(item, item.displayText, { postback: item.data });
      if (item.params && item.params.status) return note(switchNote(item), "postback-note");
      if (item.params) return note(`${Object.values(item.params).join(" ")} を選択しました`, "postback-note");
      return note(tapNote(item), "postback-note");
    case "follow":
      return note(item.isUnblocked ? "ブロックを解除しました" : "友だち追加しました");
    case "unfollow":
      return note("ブロックしました");
    default:
      return null;
  }
}

/** A rich menu switch tap, as the timeline shows it (LINE itself shows nothing in the chat):
 * the tab's label when known, else the alias the owner named. */
function switchNote(item) {
  const params = item.params;
  if (params.status !== "SUCCESS") return `(リッチメニューを切り替えられませんでした: ${params.status})`;
  if (item.label) return `(メニューを「${item.label}」に切り替えました)`;
  return `(リッチメニューを切り替えました: ${params.newRichMenuAliasId})`;
}

/** A postback without displayText (LINE shows nothing): what was tapped, never its data. */
function tapNote(item) {
  const onMenu = item.origin === "richmenu";
  if (item.label) return onMenu ? `(メニュー「${item.label}」をタップ)` : `(「${item.label}」をタップ)`;
  return onMenu ? "(メニューをタップ)" : "(ボタンをタップ)";
}

function appendItems(items) {
  for (const item of items) {
    if (item.seq <= state.since) continue; // never twice
    state.since = item.seq;
    state.items.push(item);
    const date = item.at_local.slice(0, 10);
    if (date !== state.lastDate) {
      chat.append(el("div", { class: "date-chip", dataset: { testid: "date-chip" } }, dateLabel(item.at_local)));
      state.lastDate = date;
      state.lastFrom = null;
    }
    const row = rowFor(item);
    if (row) {
      for (const img of row.querySelectorAll("img")) img.addEventListener("load", scrollToBottom, { once: true });
      chat.append(row);
    }
    state.lastFrom = item.from === "bot" ? "bot" : "user";
  }
  const empty = byTestId("chat-empty");
  if (empty) empty.remove();
  updateQuickReplies();
  renderOutbox(state.items.filter((item) => item.from === "bot"));
  scrollToBottom();
}

async function pollOnce() {
  const userId = state.selected;
  if (!userId) return;
  const gen = state.gen;
  const [answer] = await Promise.all([
    getJSON(`/_emulator/users/${userId}/timeline?since=${state.since}`),
    refreshRichMenu(),
  ]);
  if (gen !== state.gen || !answer.ok) return;
  if (answer.body.items.length) appendItems(answer.body.items);
}

/** Draw the menu the selected user sees now (the placeholder when none); nothing is redrawn
 * while the same menu from the same source stays, so the page never flickers. */
async function refreshRichMenu() {
  const userId = state.selected;
  if (!userId) return;
  const gen = state.gen;
  const answer = await getJSON(`/_emulator/users/${encodeURIComponent(userId)}/richmenu`);
  if (gen !== state.gen || (!answer.ok && answer.status !== 404)) return;
  const menu = answer.ok ? answer.body : null;
  const key = menu ? [menu.richMenuId, menu.source, menu.richMenuAliasId, ...(menu.aliases || [])].join("|") : "none";
  if (key === state.menuKey) return;
  state.menuKey = key;
  showRichMenu(menu);
}

/** Poll now (after an action); polls never overlap, a request during one runs right after. */
function pollNow() {
  if (state.polling) {
    state.pollAgain = true;
    return state.polling;
  }
  state.polling = (async () => {
    do {
      state.pollAgain = false;
      await pollOnce();
    } while (state.pollAgain);
  })().finally(() => {
    state.polling = null;
  });
  return state.polling;
}

// --- quick replies and what a tap sends -------------------------------------------------------

function hideQuickReplies() {
  quickBar.hidden = true;
  quickBar.replaceChildren();
}

function updateQuickReplies() {
  const lastItem = state.items[state.items.length - 1];
  const chips = lastItem && lastItem.from === "bot" ? quickReplyChips(lastItem.message, ctx) : [];
  if (chips.length === 0) {
    hideQuickReplies();
    return;
  }
  quickBar.replaceChildren(...chips);
  quickBar.hidden = false;
}

function requireFriend() {
  const user = selectedUser();
  if (user && user.state === "friend") return user.user_id;
  toast(user ? "先に友だち追加してください" : "ユーザーを選んでください", "info");
  return null;
}

async function sendText(text) {
  const userId = requireFriend();
  if (!userId || !text) return;
  hideQuickReplies();
  report(await postJSON(`/_emulator/users/${userId}/text`, { text }));
  await pollNow();
  refreshSide();
}

/** What a tap tells the timeline (never the bot): where it was and the label it had. */
function tapped(action, origin) {
  const out = {};
  if (origin) out.origin = origin;
  if (typeof action.label === "string" && action.label) out.label = action.label;
  return out;
}

/** A tap on a rich menu switch area: LINE switches the user's menu and posts the postback. */
async function switchRichMenu(action) {
  const userId = requireFriend();
  if (!userId) return;
  hideQuickReplies();
  const body = {
    richMenuAliasId: String(action.richMenuAliasId || ""),
    data: String(action.data ?? ""),
    ...tapped(action, "richmenu"),
  };
  const answer = await postJSON(`/_emulator/users/${userId}/richmenu/switch`, body);
  if (report(answer) && answer.body.switch.status !== "SUCCESS") {
    toast(`リッチメニューを切り替えられませんでした (${answer.body.switch.status})`, "info");
  }
  await pollNow();
  refreshSide();
}

async function sendPostback(data, displayText, params, tap = {}) {
  const userId = requireFriend();
  if (!userId) return;
  hideQuickReplies();
  const body = { data: String(data ?? ""), ...tap };
  if (displayText) body.displayText = String(displayText);
  if (params) body.params = params;
  report(await postJSON(`/_emulator/users/${userId}/postback`, body));
  await pollNow();
  refreshSide();
}

/** What a tap on `action` does, as LINE would; `origin` ("richmenu" | "message") only tells
 * the timeline where the tap was. */
function tap(action, origin) {
  switch (action.type) {
    case "message":
      return sendText(String(action.text ?? action.label ?? ""));
    case "postback":
      if (action.inputOption === "openKeyboard") {
        if (action.fillInText) input.value = action.fillInText;
        input.focus();
      }
      return sendPostback(action.data, action.displayText || action.text, null, tapped(action, origin));
    case "datetimepicker":
      return openPicker(action, origin);
    case "richmenuswitch":
      return switchRichMenu(action);
    case "uri":
      window.open(action.uri, "_blank", "noopener");
      return toast(`リンクを開きました: ${action.uri}`, "info");
    case "clipboard":
      if (navigator.clipboard) navigator.clipboard.writeText(action.clipboardText || "").catch(() => {});
      return toast(`コピーしました: ${action.clipboardText || ""}`, "info");
    default:
      return toast(`「${action.type}」アクションはシミュレーターでは使えません`, "info");
  }
}

// --- the date/time picker ---------------------------------------------------------------------

function pickerDefault(mode, action) {
  if (action.initial) return action.initial;
  const now = localNow();
  if (!now) return "";
  let value = { date: now.slice(0, 10), time: now.slice(11, 16), datetime: now.slice(0, 16) }[mode];
  if (action.min && value < action.min) value = action.min;
  if (action.max && value > action.max) value = action.max;
  return value;
}

function openPicker(action, origin) {
  if (!requireFriend()) return;
  const mode = PICKER_INPUT[action.mode] ? action.mode : "datetime";
  state.picker = { ...action, mode, tap: tapped(action, origin) };
  pickerInput.type = PICKER_INPUT[mode];
  pickerInput.dataset.mode = mode;
  pickerInput.min = action.min || "";
  pickerInput.max = action.max || "";
  pickerInput.value = pickerDefault(mode, action);
  byTestId("datetime-label").textContent = action.label || { date: "日付を選択", time: "時刻を選択", datetime: "日時を選択" }[mode];
  picker.hidden = false;
  pickerInput.focus();
}

function closePicker() {
  state.picker = null;
  picker.hidden = true;
}

async function submitPicker() {
  const action = state.picker;
  if (!action) return;
  const mode = action.mode;
  const value = pickerInput.value.slice(0, { date: 10, time: 5, datetime: 16 }[mode]);
  if (!PICKER_FORMAT[mode].test(value)) {
    toast("日付・時刻を選んでください", "info");
    return;
  }
  // LINE's formats are fixed width, so string order is time order.
  if (action.min && value < action.min) return toast(`${action.min} 以降を選んでください`, "info");
  if (action.max && value > action.max) return toast(`${action.max} 以前を選んでください`, "info");
  closePicker();
  await sendPostback(action.data, null, { [mode]: value }, action.tap);
}

// --- the side panel and the page-wide loops ---------------------------------------------------

async function refreshSide() {
  const userId = state.selected;
  const gen = state.gen;
  const [friend, stats] = await Promise.all([
    userId ? getJSON(`/_emulator/bot/friends/${encodeURIComponent(userId)}`) : Promise.resolve(null),
    getJSON("/_emulator/stats"),
  ]);
  if (gen !== state.gen) return;
  renderFriend(friend ? { status: friend.status, body: friend.body } : null);
  const byUser = stats.ok ? stats.body.billable_by_user || {} : {};
  renderBillable(userId ? byUser[userId] || 0 : null);
}

async function refreshPage() {
  const [health] = await Promise.all([getJSON("/_emulator/bot/health"), refreshUsers(), refreshClock()]);
  renderHealth({ status: health.status, body: health.body });
}

function every(ms, task) {
  const run = async () => {
    try {
      await task();
    } catch (error) {
      console.error(error);
    }
    setTimeout(run, ms);
  };
  setTimeout(run, ms);
}

function wire() {
  byTestId("create-user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const nameInput = byTestId("create-user-name");
    const name = nameInput.value.trim();
    if (!name) return;
    const answer = await postJSON("/_emulator/users", { name });
    if (!answer.ok) return toast(errorText(answer));
    nameInput.value = "";
    await refreshUsers();
    select(answer.body.user_id);
  });
  byTestId("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    await sendText(text);
    input.focus();
  });
  picker.addEventListener("submit", (event) => {
    event.preventDefault();
    submitPicker();
  });
  byTestId("datetime-cancel").addEventListener("click", closePicker);
  initTimeMachine({
    onMoved: async (clock) => {
      if (state.selected) {
        const when = clock.local.replace("T", " ");
        chat.append(note(`時間を進めました → ${when}`, "clock-move-note"));
        state.lastFrom = null;
        scrollToBottom();
      }
      await pollNow();
      await refreshSide();
    },
    onError: (message) => toast(message),
  });
}

async function start() {
  wire();
  showRichMenu(null);
  await refreshPage();
  const wanted = location.hash.slice(1);
  const initial = state.users.find((u) => u.user_id === wanted) || state.users[0];
  if (initial) {
    select(initial.user_id);
    await pollNow(); // the chat and the rich menu are drawn before the page says it is ready
  } else renderFriend(null);
  document.body.dataset.ready = "true";
  every(POLL_MS, pollNow);
  every(PANEL_MS, refreshSide);
  every(PANEL_MS, refreshPage);
}

/** Draw `menu` (see richmenu.js) at the bottom of the phone, its areas tapping like LINE's;
 * null shows the placeholder. The polling loop calls it with the selected user's menu when
 * that changes; tests may call it (window.stepline) to draw any menu. */
function showRichMenu(menu) {
  const container = byTestId("rich-menu");
  if (menu) drawRichMenu(container, menu, (action) => tap(action, "richmenu"));
  else clearRichMenu(container);
}

// Reachable from tests and the console.
window.stepline = { showRichMenu, tap };

start();
