// The rich menu at the bottom of the phone.
//
// simulator.js draws the menu the selected user sees (GET /_emulator/users/<id>/richmenu) with
// drawRichMenu(container, menu, onAction), and the placeholder when the user sees none:
//   menu = {imageUrl, size: {width, height}, areas: [{bounds: {x, y, width, height}, action}],
//           chatBarText, selected, richMenuAliasId?, aliases?}
// Each area becomes a transparent button (data-testid="rich-menu-area") placed in percent of
// the image, so it lines up at any width; tapping it calls onAction(area.action). A tab (a
// richmenuswitch area) whose alias is the menu shown is marked as the current one
// (class rich-menu-area-current, aria-current="true", data-current="true").
import { el } from "./dom.js";

export function clearRichMenu(container) {
  container.classList.remove("rich-menu-on");
  container.replaceChildren(
    el("div", { class: "rich-menu-placeholder", dataset: { testid: "rich-menu-placeholder" } }, "リッチメニュー (未設定)"),
  );
}

/** The aliases that name the menu shown: the one switched to, else every alias of the menu. */
function currentAliases(menu) {
  if (menu.richMenuAliasId) return new Set([menu.richMenuAliasId]);
  return new Set(Array.isArray(menu.aliases) ? menu.aliases : []);
}

export function drawRichMenu(container, menu, onAction) {
  if (!menu || !menu.imageUrl || !menu.size) {
    clearRichMenu(container);
    return;
  }
  const { width, height } = menu.size;
  const surface = el("div", {
    class: "rich-menu-image",
    dataset: { testid: "rich-menu-image", richMenuId: menu.richMenuId, source: menu.source },
  });
  surface.style.aspectRatio = `${width} / ${height}`;
  surface.style.backgroundImage = `url("${String(menu.imageUrl).replace(/"/g, "%22")}")`;
  const aliases = currentAliases(menu);
  (menu.areas || []).forEach((area, index) => {
    const b = area.bounds || {};
    const action = area.action || {};
    const isTab = action.type === "richmenuswitch";
    const current = isTab && aliases.has(action.richMenuAliasId);
    const label = action.label || `エリア ${index + 1}`;
    const button = el("button", {
      type: "button",
      class: `rich-menu-area${isTab ? " rich-menu-tab" : ""}${current ? " rich-menu-area-current" : ""}`,
      title: label,
      "aria-label": label,
      "aria-current": current ? "true" : null,
      dataset: { testid: "rich-menu-area", index, actionType: action.type, current: isTab ? String(current) : null },
      onclick: () => onAction(action),
    });
    Object.assign(button.style, {
      left: `${(100 * b.x) / width}%`,
      top: `${(100 * b.y) / height}%`,
      width: `${(100 * b.width) / width}%`,
      height: `${(100 * b.height) / height}%`,
    });
    surface.append(button);
  });
  const bar = el("div", { class: "rich-menu-bar", dataset: { testid: "rich-menu-bar" } }, menu.chatBarText || "メニュー");
  bar.addEventListener("click", () => surface.toggleAttribute("hidden"));
  if (menu.selected === false) surface.hidden = true;
  container.classList.add("rich-menu-on");
  container.replaceChildren(surface, bar);
}
