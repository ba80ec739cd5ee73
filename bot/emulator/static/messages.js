// LINE message objects → what the chat shows (the bot's side). Every tappable thing calls
// ctx.onAction(action); what a tap sends is decided in simulator.js, as LINE would.
import { el, image } from "./dom.js";
import { renderFlex } from "./flex.js";

/** What a button shows: its label, else what it would send or open. */
export function actionLabel(action) {
  if (!action || typeof action !== "object") return "?";
  for (const key of ["label", "displayText", "text", "uri", "data"]) {
    if (typeof action[key] === "string" && action[key]) return action[key];
  }
  return String(action.type || "?");
}

function actionButton(action, ctx, className, testid = "template-action") {
  const label = actionLabel(action);
  return el(
    "button",
    {
      type: "button",
      class: className,
      dataset: { testid, actionType: action && action.type },
      onclick: () => ctx.onAction(action || {}),
    },
    label,
    action && action.type === "uri" ? el("span", { class: "link-mark", "aria-hidden": "true" }, " ↗") : null,
  );
}

function textV2(message) {
  const subs = message.substitution || {};
  return String(message.text || "").replace(/\{([A-Za-z0-9_]+)\}/g, (whole, key) => {
    const sub = subs[key];
    if (!sub) return whole;
    if (sub.type === "mention") return sub.mentionee && sub.mentionee.type === "all" ? "@All" : "@あなた";
    return "(絵文字)";
  });
}

// http(s) URLs in a text: the characters RFC 3986 allows, so 「」、。 and spaces end one.
const URL_RE = /https?:\/\/[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+/g;
const URL_TRAILING = /[.,;:!?'\]]+$/;
const LINK_TEXT_MAX = 40;
const LINK_SHORT_REST = 16;

/** A URL as the bubble shows it: whole when short, else the host and the start of the rest. */
export function shortUrl(url) {
  if (url.length <= LINK_TEXT_MAX) return url;
  const [, host, rest] = url.match(/^https?:\/\/([^/?#]*)([^]*)$/) || [url, "", url];
  return `${host}${rest.slice(0, LINK_SHORT_REST)}…`;
}

/** Where a matched URL really ends: not at a sentence's final dot, nor a ")" it did not open. */
function trimUrl(url) {
  let out = url.replace(URL_TRAILING, "");
  while (out.endsWith(")") && out.split("(").length < out.split(")").length) {
    out = out.slice(0, -1).replace(URL_TRAILING, "");
  }
  return out;
}

/** A message text as DOM nodes: text nodes, and each URL an <a> opening it in a new tab (a
 * real GET, so a tracked link records its click). Never HTML: the text stays text. */
export function linkedText(value) {
  const text = String(value ?? "");
  const nodes = [];
  let done = 0;
  for (const match of text.matchAll(URL_RE)) {
    const url = trimUrl(match[0]);
    if (!/^https?:\/\/[^/?#]+/.test(url)) continue;
    if (match.index > done) nodes.push(text.slice(done, match.index));
    nodes.push(
      el("a", { class: "bubble-link", href: url, target: "_blank", rel: "noopener", title: url, dataset: { testid: "bubble-link" } }, shortUrl(url)),
    );
    done = match.index + url.length;
  }
  if (done < text.length) nodes.push(text.slice(done));
  return nodes;
}

function textBubble(text) {
  return el("div", { class: "bubble bubble-text" }, linkedText(text));
}

function card(...children) {
  return el("div", { class: "bubble bubble-card" }, ...children);
}

function thumbnail(template, url) {
  const frame = image(url, { fit: template.imageSize === "contain" ? "contain" : "cover", className: "tpl-image" });
  frame.style.aspectRatio = template.imageAspectRatio === "square" ? "1 / 1" : "1.51 / 1";
  if (template.imageBackgroundColor) frame.style.backgroundColor = template.imageBackgroundColor;
  return frame;
}

function withDefaultAction(node, action, ctx) {
  if (action && typeof action === "object") {
    node.classList.add("tappable");
    node.addEventListener("click", () => ctx.onAction(action));
  }
  return node;
}

function templateColumn(template, column, ctx) {
  const head = el(
    "div",
    { class: "tpl-head" },
    column.title ? el("div", { class: "tpl-title" }, column.title) : null,
    el("div", { class: "tpl-text" }, column.text || ""),
  );
  withDefaultAction(head, column.defaultAction, ctx);
  const image = column.thumbnailImageUrl ? thumbnail(template, column.thumbnailImageUrl) : null;
  if (image) withDefaultAction(image, column.defaultAction, ctx);
  const actions = el("div", { class: "tpl-actions" }, (column.actions || []).map((a) => actionButton(a, ctx, "tpl-action")));
  return el("div", { class: "tpl-column" }, image, head, actions);
}

function renderTemplate(template, ctx) {
  switch (template.type) {
    case "buttons":
      return el("div", { class: "bubble bubble-card tpl tpl-buttons" }, templateColumn(template, template, ctx));
    case "confirm":
      return el(
        "div",
        { class: "bubble bubble-card tpl tpl-confirm" },
        el("div", { class: "tpl-text tpl-confirm-text" }, template.text || ""),
        el("div", { class: "tpl-confirm-actions" }, (template.actions || []).map((a) => actionButton(a, ctx, "tpl-action"))),
      );
    case "carousel":
      return el(
        "div",
        { class: "tpl-carousel" },
        (template.columns || []).map((column) =>
          el("div", { class: "bubble bubble-card tpl tpl-buttons" }, templateColumn(template, column, ctx)),
        ),
      );
    case "image_carousel":
      return el(
        "div",
        { class: "tpl-carousel" },
        (template.columns || []).map((column) =>
          el(
            "div",
            { class: "bubble bubble-card tpl tpl-image-column" },
            image(column.imageUrl, { className: "tpl-image tpl-image-square" }),
            actionButton(column.action || {}, ctx, "tpl-image-action"),
          ),
        ),
      );
    default:
      return textBubble(`[${template.type} テンプレート]`);
  }
}

function mediaBubble(kind, message, ctx) {
  const url = message.previewImageUrl || message.originalContentUrl;
  const node = el("div", { class: `bubble bubble-media bubble-${kind}` }, image(url, { label: kind === "video" ? "動画" : "画像" }));
  if (kind === "video") node.append(el("span", { class: "play-mark", "aria-hidden": "true" }));
  if (message.originalContentUrl) {
    node.classList.add("tappable");
    node.title = "開く";
    node.addEventListener("click", () => ctx.onAction({ type: "uri", uri: message.originalContentUrl }));
  }
  return node;
}

/** The element for one of the bot's messages, plus the kind it was drawn as. */
export function renderMessage(message, ctx) {
  const kind = String(message.type || "?");
  switch (kind) {
    case "text":
      return textBubble(String(message.text ?? ""));
    case "textV2":
      return textBubble(textV2(message));
    case "sticker":
      return el(
        "div",
        { class: "bubble bubble-sticker", title: `スタンプ ${message.packageId}/${message.stickerId}` },
        el("span", { class: "sticker-face", "aria-hidden": "true" }),
        el("span", { class: "sticker-label" }, "スタンプ"),
        el("span", { class: "sticker-id" }, `${message.packageId ?? "?"}/${message.stickerId ?? "?"}`),
      );
    case "image":
    case "video":
      return mediaBubble(kind, message, ctx);
    case "audio":
      return card(el("div", { class: "tpl-text" }, `音声メッセージ (${Math.round((message.duration || 0) / 1000)}秒)`));
    case "location":
      return card(
        el("div", { class: "tpl-title" }, message.title || "位置情報"),
        el("div", { class: "tpl-text" }, message.address || ""),
        el("div", { class: "tpl-note" }, `${message.latitude}, ${message.longitude}`),
      );
    case "template":
      return renderTemplate(message.template || {}, ctx);
    case "flex":
      return el("div", { class: "bubble bubble-flex" }, renderFlex(message.contents, ctx));
    case "imagemap":
      return card(
        image(message.baseUrl ? `${message.baseUrl}/700` : null, { className: "tpl-image", label: "イメージマップ" }),
        el("div", { class: "tpl-text" }, message.altText || ""),
        el("div", { class: "tpl-actions" }, (message.actions || []).map((a) =>
          actionButton({ ...a, type: a.type === "uri" ? "uri" : a.type, uri: a.linkUri, label: a.label || a.text || a.linkUri }, ctx, "tpl-action"),
        )),
      );
    case "coupon":
      return card(el("div", { class: "tpl-title" }, "クーポン"), el("div", { class: "tpl-note" }, message.couponId || ""));
    default:
      return card(el("div", { class: "tpl-note" }, `[${kind}] このメッセージはシミュレーターでは表示できません`));
  }
}

/** A short text for lists (the outbox): the text, the alt text, or what kind it is. */
export function summary(message) {
  const labels = { image: "[画像]", video: "[動画]", audio: "[音声]", sticker: "[スタンプ]", location: "[位置情報]", coupon: "[クーポン]" };
  if (message.type === "text" || message.type === "textV2") return String(message.text || "");
  if (message.altText) return String(message.altText);
  return labels[message.type] || `[${message.type}]`;
}

/** The quick-reply chips of a message (empty when it has none). */
export function quickReplyChips(message, ctx) {
  const items = (message && message.quickReply && message.quickReply.items) || [];
  return items
    .filter((item) => item && item.action)
    .map((item) =>
      el(
        "button",
        { type: "button", class: "chip", dataset: { testid: "quick-reply", actionType: item.action.type }, onclick: () => ctx.onAction(item.action) },
        item.imageUrl ? image(item.imageUrl, { className: "chip-icon", label: "" }) : null,
        actionLabel(item.action),
      ),
    );
}
