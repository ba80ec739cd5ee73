// The side panel: the friend as the bot sees it (tags, fields, current flow), the outbox
// (free replies and paid pushes) and the billable count. Each render only touches the DOM
// when what it shows has changed, so a 1 s refresh never flickers.
import { byTestId, el } from "./dom.js";
import { summary } from "./messages.js";

const VIA = {
  reply: { label: "返信", billing: "free", note: "無料" },
  push: { label: "プッシュ", billing: "paid", note: "有料" },
  multicast: { label: "マルチキャスト", billing: "paid", note: "有料" },
};

const last = new Map();

function changed(key, value) {
  const text = JSON.stringify(value);
  if (last.get(key) === text) return false;
  last.set(key, text);
  return true;
}

export function resetPanel() {
  last.clear();
}

function fieldValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** `answer`: {status, body} from GET /_emulator/bot/friends/<id>, or null (no user chosen). */
export function renderFriend(answer) {
  if (!changed("friend", answer)) return;
  const status = byTestId("friend-status");
  const flow = byTestId("friend-flow");
  const tags = byTestId("friend-tags");
  const fields = byTestId("friend-fields");
  tags.replaceChildren();
  fields.replaceChildren();
  byTestId("friend-steps").replaceChildren();
  flow.replaceChildren("なし");
  flow.dataset.flow = "";
  flow.dataset.state = "";
  if (!answer) {
    status.textContent = "ユーザーが選ばれていません";
    return;
  }
  const body = answer.body || {};
  if (answer.status === 404) {
    status.textContent = "ボットはまだこの友だちを知りません(友だち追加すると登録されます)";
    return;
  }
  if (answer.status !== 200) {
    status.textContent = body.configured === false
      ? "ボットの管理APIが未設定のため表示できません"
      : `ボットから取得できません: ${body.error || answer.status}`;
    return;
  }
  const state = { following: "友だち", friend: "友だち", blocked: "ブロック中" }[body.status] || body.status || "";
  status.textContent = `${body.display_name || "(名前なし)"} — ${state}`;
  const conversation = body.conversation;
  if (conversation) {
    flow.dataset.flow = conversation.flow;
    flow.dataset.state = conversation.state;
    flow.replaceChildren(
      el("span", { class: "flow-name", dataset: { testid: "friend-flow-name" } }, conversation.flow),
      el("span", { class: "flow-sep", "aria-hidden": "true" }, " / "),
      el("span", { class: "flow-state", dataset: { testid: "friend-flow-state" } }, conversation.state),
    );
  }
  const tagNames = body.tags || [];
  if (tagNames.length === 0) tags.append(el("span", { class: "muted" }, "なし"));
  for (const name of tagNames) {
    tags.append(el("span", { class: "tag", dataset: { testid: "friend-tag", tag: name } }, name));
  }
  // As the owner wrote them (性別 = 女性) when the bot says so; else the raw names and values.
  const shown = Array.isArray(body.fields_shown)
    ? body.fields_shown
    : Object.entries(body.fields || {}).map(([name, value]) => ({ field: name, label: name, value: fieldValue(value) }));
  if (shown.length === 0) fields.append(el("div", { class: "muted" }, "なし"));
  for (const item of shown) {
    fields.append(
      el(
        "div",
        { class: "field", dataset: { testid: "friend-field", field: item.field } },
        el("dt", { title: item.field }, item.label),
        el("dd", { dataset: { testid: "friend-field-value" } }, item.value),
      ),
    );
  }
  renderSteps(body.sequences || []);
}

/** Each waiting sequence step and when it goes (account time, as the bot planned it). */
function renderSteps(waiting) {
  const steps = byTestId("friend-steps");
  steps.replaceChildren();
  if (waiting.length === 0) {
    steps.append(el("li", { class: "muted" }, "なし"));
    return;
  }
  for (const item of waiting) {
    // "2026-11-24T10:00:00+09:00" → "11/24 10:00": the bot gives it in the account's zone.
    const when = item.due_at.slice(5, 16).replace("-", "/").replace("T", " ");
    steps.append(
      el(
        "li",
        { class: "step", dataset: { testid: "friend-step", sequence: item.sequence, step: String(item.next_step) } },
        el("span", {}, `${item.title} ${item.next_step}通目 / ${item.steps}`),
        el("time", { datetime: item.due_at, dataset: { testid: "friend-step-due" } }, when),
      ),
    );
  }
}

/** Every message the user received (timeline items from the bot), newest first. */
export function renderOutbox(botItems) {
  const outbox = byTestId("outbox");
  const key = botItems.map((item) => item.seq);
  if (!changed("outbox", key)) return;
  outbox.replaceChildren();
  if (botItems.length === 0) {
    outbox.append(el("li", { class: "muted" }, "まだありません"));
    return;
  }
  for (const item of [...botItems].reverse()) {
    const via = VIA[item.via] || { label: item.via, billing: "paid", note: "有料" };
    outbox.append(
      el(
        "li",
        { class: `outbox-item outbox-${via.billing}`, dataset: { testid: "outbox-item", via: item.via, billing: via.billing, seq: item.seq } },
        el("span", { class: `via via-${via.billing}`, dataset: { testid: "outbox-via" } }, `${via.label}(${via.note})`),
        el("time", { class: "outbox-time", datetime: item.at }, item.at_local.slice(5).replace("-", "/")),
        el("span", { class: "outbox-text" }, summary(item.message)),
      ),
    );
  }
}

export function renderBillable(count) {
  if (!changed("billable", count)) return;
  byTestId("billable-count").textContent = count === null ? "" : `有料メッセージ ${count} 通`;
  byTestId("billable-count").dataset.count = count === null ? "" : String(count);
}

/** The banner for the bot's catalogue problems (or an unreachable bot). */
export function renderHealth(answer) {
  if (!changed("health", answer)) return;
  const banner = byTestId("problems-banner");
  const title = byTestId("problems-title");
  const list = byTestId("problems-list");
  const body = (answer && answer.body) || {};
  const problems = Array.isArray(body.catalogue_problems) ? body.catalogue_problems : [];
  list.replaceChildren();
  banner.dataset.kind = "";
  if (problems.length) {
    const loaded = body.catalogue === "loaded";
    banner.dataset.kind = "catalogue";
    title.textContent = loaded
      ? `フロー定義に ${problems.length} 件の問題があります。直前の正しい定義のまま動いています。`
      : `フロー定義を読み込めません(${problems.length} 件の問題)`;
    for (const problem of problems) list.append(el("li", { dataset: { testid: "problem" } }, el("code", {}, problem)));
    banner.hidden = false;
  } else if (answer && answer.status !== 200 && body.error && body.configured !== false) {
    banner.dataset.kind = "unreachable";
    title.textContent = "ボットに接続できません";
    list.append(el("li", {}, body.error));
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}
