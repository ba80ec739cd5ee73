// The rich menu at the bottom of the phone.
//
// simulator.js draws the menu the selected user sees (GET /_emulator/users/<id>/richmenu) with
// drawRichMenu(container, menu, onAction), and the placeholder when the user sees none:
//   menu = {imageUrl, size: {width, height}, areas: [{bounds: {x, y, width, height}, action}],
//           chatBarText, selected}
// Each area becomes a transparent button (data-testid="rich-menu-area") placed in percent of
// the image, so it lines up at any width; tapping it calls onAction(area.action).
import { el } from "./dom.js";

export function clearRichMenu(container) {
  container.classList.remove("rich-menu-on");
  container.replaceChildren(
    el("div", { class: "rich-menu-placeholder", dataset: { testid: "rich-menu-placeholder" } }, "リッチメニュー (未設定)"),
  );
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
  (menu.areas || []).forEach((area, index) => {
    const b = area.bounds || {};
    const button = el("button", {
      type: "button",
      class: "rich-menu-area",
      title: (area.action && area.action.label) || `エリア ${index + 1}`,
      dataset: { testid: "rich-menu-area", index, actionType: area.action && area.action.type },
      onclick: () => onAction(area.action || {}),
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
