// Flex Message renderer: bubble/carousel containers, box layouts (vertical, horizontal,
// baseline), text (with spans), image, button, separator, spacer, icon, filler, video.
// Sizes follow LINE's keywords (xxs…5xl, none…xxl) and accept "Npx"/"N%" values.
import { el, image } from "./dom.js";

const SPACING = { none: "0px", xs: "2px", sm: "4px", md: "8px", lg: "12px", xl: "16px", xxl: "20px" };
const TEXT_SIZE = {
  xxs: "11px", xs: "13px", sm: "14px", md: "16px", lg: "19px", xl: "22px",
  xxl: "29px", "3xl": "35px", "4xl": "48px", "5xl": "74px",
};
const IMAGE_SIZE = {
  xxs: "40px", xs: "60px", sm: "80px", md: "100px", lg: "120px", xl: "140px", xxl: "160px",
  "3xl": "180px", "4xl": "200px", "5xl": "220px", full: "100%",
};
const CORNER = { none: "0px", xs: "2px", sm: "4px", md: "8px", lg: "12px", xl: "16px", xxl: "20px" };
const BORDER = { none: "0px", light: "0.5px", normal: "1px", medium: "2px", "semi-bold": "3px", bold: "4px" };
const BLOCK_PADDING = { header: "20px", hero: "0px", body: "20px", footer: "10px" };
const ALIGN = { start: "flex-start", end: "flex-end", center: "center" };
const TEXT_ALIGN = { start: "left", end: "right", center: "center" };
const PX_OR_PERCENT = /^-?\d+(\.\d+)?(px|%)$/;

function measure(value, map) {
  if (value === undefined || value === null) return null;
  if (map && Object.prototype.hasOwnProperty.call(map, value)) return map[value];
  return PX_OR_PERCENT.test(String(value)) ? String(value) : null;
}

function ratio(value, fallback = "1:1") {
  const match = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(value || fallback);
  return match ? `${match[1]} / ${match[2]}` : "1 / 1";
}

function horizontal(layout) {
  return layout === "horizontal" || layout === "baseline";
}

/** A component's share of its parent box (LINE: 1 in horizontal boxes, 0 in vertical). */
function applyFlex(node, component, parentLayout, fallback) {
  const isRow = horizontal(parentLayout);
  const n = component.flex ?? fallback ?? (isRow ? 1 : 0);
  if (isRow) {
    node.style.flex = n > 0 ? `${n} 1 0px` : "0 0 auto";
    node.style.minWidth = "0";
  } else {
    node.style.flex = `${n} 0 auto`;
  }
}

function applyPosition(node, c) {
  if (c.position === "absolute") node.style.position = "absolute";
  for (const [key, prop] of [["offsetTop", "top"], ["offsetBottom", "bottom"], ["offsetStart", "left"], ["offsetEnd", "right"]]) {
    const value = measure(c[key], SPACING);
    if (value) node.style.setProperty(prop, value);
  }
}

function tappable(node, action, ctx) {
  if (!action || typeof action !== "object") return node;
  node.classList.add("fx-tappable");
  node.setAttribute("role", "button");
  node.tabIndex = 0;
  node.dataset.testid = node.dataset.testid || "flex-tap";
  node.dataset.actionType = action.type || "";
  if (action.label) node.title = action.label;
  const fire = (event) => {
    event.stopPropagation();
    ctx.onAction(action);
  };
  node.addEventListener("click", fire);
  node.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") fire(event);
  });
  return node;
}

function box(c, ctx) {
  const layout = ["horizontal", "baseline", "vertical"].includes(c.layout) ? c.layout : "vertical";
  const node = el("div", { class: `fx-box fx-${layout}` });
  const s = node.style;
  if (c.backgroundColor) s.backgroundColor = c.backgroundColor;
  const border = measure(c.borderWidth, BORDER);
  if (border) s.border = `${border} solid ${c.borderColor || "#000000"}`;
  else if (c.borderColor) s.border = `1px solid ${c.borderColor}`;
  const corner = measure(c.cornerRadius, CORNER);
  if (corner) s.borderRadius = corner;
  for (const [key, prop] of [["width", "width"], ["maxWidth", "max-width"], ["height", "height"], ["maxHeight", "max-height"]]) {
    const value = measure(c[key]);
    if (value) s.setProperty(prop, value);
  }
  const all = measure(c.paddingAll, SPACING);
  if (all) s.padding = all;
  for (const [key, prop] of [["paddingTop", "padding-top"], ["paddingBottom", "padding-bottom"], ["paddingStart", "padding-left"], ["paddingEnd", "padding-right"]]) {
    const value = measure(c[key], SPACING);
    if (value) s.setProperty(prop, value);
  }
  if (c.justifyContent) s.justifyContent = c.justifyContent;
  if (c.alignItems) s.alignItems = c.alignItems;
  const background = c.background;
  if (background && background.type === "linearGradient") {
    const stops = [background.startColor, background.centerColor, background.endColor].filter(Boolean);
    s.backgroundImage = `linear-gradient(${background.angle || "0deg"}, ${stops.join(", ")})`;
  }
  const spacing = measure(c.spacing, SPACING);
  (Array.isArray(c.contents) ? c.contents : []).forEach((child, index) => {
    if (!child || typeof child !== "object") return;
    const childNode = component(child, layout, ctx);
    if (!childNode) return;
    const margin = measure(child.margin, SPACING) ?? (index > 0 ? spacing : null);
    if (margin && child.position !== "absolute") {
      childNode.style.setProperty(horizontal(layout) ? "margin-left" : "margin-top", margin);
    }
    node.append(childNode);
  });
  return node;
}

function span(sp) {
  const node = el("span", { text: sp.text ?? "" });
  const size = measure(sp.size, TEXT_SIZE);
  if (size) node.style.fontSize = size;
  if (sp.color) node.style.color = sp.color;
  if (sp.weight === "bold") node.style.fontWeight = "700";
  if (sp.style === "italic") node.style.fontStyle = "italic";
  if (sp.decoration && sp.decoration !== "none") node.style.textDecoration = sp.decoration;
  return node;
}

function text(c) {
  const node = el("div", { class: "fx-text", dataset: { testid: "flex-text" } });
  const spans = Array.isArray(c.contents) ? c.contents.filter((sp) => sp && sp.type === "span") : [];
  if (spans.length) node.append(...spans.map(span));
  else node.textContent = c.text ?? "";
  const s = node.style;
  s.fontSize = measure(c.size, TEXT_SIZE) || TEXT_SIZE.md;
  if (c.weight === "bold") s.fontWeight = "700";
  if (c.color) s.color = c.color;
  if (c.style === "italic") s.fontStyle = "italic";
  if (c.decoration && c.decoration !== "none") s.textDecoration = c.decoration;
  if (c.align) s.textAlign = TEXT_ALIGN[c.align] || "left";
  const lineSpacing = measure(c.lineSpacing);
  if (lineSpacing) s.lineHeight = `calc(1.4em + ${lineSpacing})`;
  if (c.wrap) {
    node.classList.add("fx-wrap");
    if (c.maxLines > 0) {
      node.classList.add("fx-clamp");
      s.webkitLineClamp = String(c.maxLines);
    }
  }
  return node;
}

function flexImage(c, ctx, { hero = false } = {}) {
  const size = measure(c.size, IMAGE_SIZE) || (hero ? "100%" : IMAGE_SIZE.md);
  const frame = image(c.url, { fit: c.aspectMode === "cover" ? "cover" : "contain", className: "fx-image-frame" });
  frame.style.width = size;
  frame.style.aspectRatio = ratio(c.aspectRatio);
  if (c.backgroundColor) frame.style.backgroundColor = c.backgroundColor;
  const node = el("div", { class: "fx-image", dataset: { testid: "flex-image" } }, frame);
  node.style.justifyContent = ALIGN[c.align] || "center";
  tappable(frame, c.action, ctx);
  return node;
}

function button(c, ctx) {
  const style = ["primary", "secondary", "link"].includes(c.style) ? c.style : "link";
  const action = c.action || {};
  const node = el(
    "button",
    {
      type: "button",
      class: `fx-button fx-button-${style} fx-button-${c.height === "sm" ? "sm" : "md"}`,
      dataset: { testid: "flex-action", actionType: action.type || "" },
    },
    action.label ?? "",
  );
  if (c.color) {
    if (style === "link") node.style.color = c.color;
    else node.style.backgroundColor = c.color;
  }
  node.addEventListener("click", () => ctx.onAction(action));
  return node;
}

function icon(c) {
  const size = measure(c.size, TEXT_SIZE) || TEXT_SIZE.md;
  const node = image(c.url, { className: "fx-icon", fit: "contain", label: "" });
  node.style.height = size;
  node.style.aspectRatio = ratio(c.aspectRatio);
  return node;
}

function component(c, parentLayout, ctx) {
  let node;
  switch (c.type) {
    case "box":
      node = box(c, ctx);
      tappable(node, c.action, ctx);
      break;
    case "text":
      node = text(c);
      tappable(node, c.action, ctx);
      break;
    case "span":
      return span(c);
    case "image":
      node = flexImage(c, ctx);
      break;
    case "button":
      node = button(c, ctx);
      break;
    case "icon":
      node = icon(c);
      applyFlex(node, c, parentLayout, 0);
      return node;
    case "separator": {
      node = el("div", { class: horizontal(parentLayout) ? "fx-separator fx-separator-v" : "fx-separator" });
      if (c.color) node.style.borderColor = c.color;
      applyFlex(node, c, parentLayout, 0);
      return node;
    }
    case "spacer": {
      const size = measure(c.size, SPACING) || SPACING.md;
      node = el("div", { class: "fx-spacer" });
      node.style[horizontal(parentLayout) ? "width" : "height"] = size;
      applyFlex(node, c, parentLayout, 0);
      return node;
    }
    case "filler":
      node = el("div", { class: "fx-filler" });
      applyFlex(node, c, parentLayout, 1);
      return node;
    case "video":
      node = el("div", { class: "fx-video" }, c.altContent ? component(c.altContent, "vertical", ctx) : image(c.previewUrl));
      node.append(el("span", { class: "fx-video-play", "aria-hidden": "true" }));
      break;
    default:
      node = el("div", { class: "fx-unknown" }, `[${c.type}]`);
  }
  applyFlex(node, c, parentLayout);
  applyPosition(node, c);
  if (c.gravity && horizontal(parentLayout)) node.style.alignSelf = ALIGN[{ top: "start", bottom: "end", center: "center" }[c.gravity]] || "";
  return node;
}

function bubble(b, ctx) {
  const node = el("div", {
    class: `fx-bubble fx-size-${b.size || "mega"}`,
    dataset: { testid: "flex-bubble" },
    dir: b.direction === "rtl" ? "rtl" : null,
  });
  const styles = b.styles || {};
  let first = true;
  for (const name of ["header", "hero", "body", "footer"]) {
    const root = b[name];
    if (!root || typeof root !== "object") continue;
    const blockStyle = styles[name] || {};
    const block = el("div", { class: `fx-block fx-block-${name}` });
    if (blockStyle.backgroundColor) block.style.backgroundColor = blockStyle.backgroundColor;
    if (blockStyle.separator && !first) {
      block.style.borderTop = `1px solid ${blockStyle.separatorColor || "#e5e5e5"}`;
    }
    const rootNode = name === "hero" && root.type === "image"
      ? flexImage(root, ctx, { hero: true })
      : component(root, "vertical", ctx);
    const hasPadding = ["paddingAll", "paddingTop", "paddingBottom", "paddingStart", "paddingEnd"].some((k) => k in root);
    if (root.type === "box" && !hasPadding) rootNode.style.padding = BLOCK_PADDING[name];
    block.append(rootNode);
    node.append(block);
    first = false;
  }
  tappable(node, b.action, ctx);
  return node;
}

/** A flex message's `contents` (bubble or carousel) as an element. */
export function renderFlex(container, ctx) {
  if (!container || typeof container !== "object") return el("div", { class: "fx-unknown" }, "[flex]");
  if (container.type === "carousel") {
    const bubbles = (container.contents || []).filter((b) => b && typeof b === "object");
    return el("div", { class: "fx-carousel", dataset: { testid: "flex-carousel" } }, bubbles.map((b) => bubble(b, ctx)));
  }
  return bubble(container, ctx);
}
