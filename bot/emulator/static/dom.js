// Tiny DOM helpers shared by the simulator's modules.

/**
 * Create an element: el("div", {class: "x", dataset: {testid: "y"}, onclick: fn}, child, "text")
 * Attributes whose value is null/undefined/false are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "dataset") {
      for (const [name, v] of Object.entries(value)) {
        if (v !== null && v !== undefined) node.dataset[name] = String(v);
      }
    } else if (key === "style" && typeof value === "object") {
      for (const [name, v] of Object.entries(value)) {
        if (v !== null && v !== undefined && v !== "") node.style.setProperty(name, String(v));
      }
    } else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "text") {
      node.textContent = String(value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/** An <img> that turns into a labelled placeholder when the URL does not load. */
export function image(url, { alt = "画像", className = "", fit = "cover", label = "画像" } = {}) {
  const holder = el("div", { class: `img-holder ${className}`.trim() });
  const placeholder = () => {
    holder.classList.add("img-missing");
    holder.replaceChildren(el("span", { class: "img-missing-label", title: url || "" }, label));
  };
  if (!url) {
    placeholder();
    return holder;
  }
  const img = el("img", { src: url, alt, referrerpolicy: "no-referrer" });
  img.style.objectFit = fit;
  img.addEventListener("error", placeholder, { once: true });
  holder.append(img);
  return holder;
}
