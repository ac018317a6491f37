/* Crieur — the campaign block editor.
 *
 * Plain JavaScript, no framework, no inline script (CSP script-src 'self'). Every control
 * is a native form control, so the editor works with the keyboard alone: blocks move with
 * "Monter"/"Descendre" buttons, focus follows the block that moved, and what happens is
 * announced in a polite live region. The whole content is saved as JSON to the page's
 * save URL (header X-CSRFToken) a moment after each change; the preview frames and the
 * text pane are then reloaded from the server, which renders the saved version.
 * Officer text is only ever put into the page with textContent or .value, never as HTML.
 */
(function () {
  "use strict";

  var dataNode = document.getElementById("editor-data");
  if (!dataNode) { return; }
  var cfg = JSON.parse(dataNode.textContent);
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  var blocks = JSON.parse(JSON.stringify(cfg.blocks || []));
  var version = cfg.version;
  var list = document.getElementById("blocks");
  var form = document.getElementById("campaign-form");
  var statusNode = document.getElementById("save-status");
  var errorNode = document.getElementById("save-error");
  var typeSelect = document.getElementById("new-block-type");
  var addButton = document.getElementById("add-block");

  var LABELS = {};
  cfg.types.forEach(function (t) { LABELS[t.type] = t.label; });

  var FIELDS = {
    heading: [{ key: "text", label: "Texte du titre", kind: "text", max: 200 }],
    text: [{ key: "markdown", label: "Texte (Markdown simple)", kind: "textarea", max: 20000 }],
    image: [
      { key: "src", label: "Adresse de l'image (https://…)", kind: "url" },
      { key: "alt", label: "Texte alternatif : ce que montre l'image (obligatoire)", kind: "text", max: 300 },
      { key: "href", label: "Lien au clic sur l'image (facultatif)", kind: "url" }
    ],
    button: [
      { key: "label", label: "Libellé du bouton", kind: "text", max: 80 },
      { key: "url", label: "Lien du bouton (https://… ou mailto:…)", kind: "url" }
    ],
    video: [
      { key: "url", label: "Lien de la vidéo", kind: "url" },
      { key: "thumbnail", label: "Image d'aperçu de la vidéo (https://…)", kind: "url" },
      { key: "caption", label: "Légende", kind: "text", max: 300 }
    ],
    event: [],
    rsvp: [],
    poll: [
      { key: "question", label: "Question", kind: "text", max: 300 },
      { key: "options", label: "Réponses possibles : une par ligne (2 à 5)", kind: "lines" }
    ],
    social: [],
    divider: [],
    confirm: [{ key: "label", label: "Libellé du bouton de confirmation", kind: "text", max: 80 }]
  };
  var NOTES = {
    event: "Affiche la date, l'heure et le lieu de l'événement décrit plus haut.",
    rsvp: "Affiche les boutons de réponse « Oui », « Non » et « Peut-être ».",
    divider: "Une ligne de séparation.",
    confirm: "Le bouton mène chaque destinataire à sa propre page de confirmation (lien valable 30 jours)."
  };
  var DEFAULTS = {
    heading: { text: "" },
    text: { markdown: "" },
    image: { src: "", alt: "" },
    button: { label: "", url: "" },
    video: { url: "", thumbnail: "", caption: "" },
    event: {},
    rsvp: {},
    poll: { question: "", options: ["", ""] },
    social: { links: [{ network: "facebook", url: "" }] },
    divider: {},
    confirm: { label: "Je confirme mon inscription" }
  };

  // ------------------------------------------------------------------ helpers

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) { node.setAttribute(k, attrs[k]); }
    });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function announce(message) {
    statusNode.textContent = message;
  }

  function blockName(i) {
    return "Bloc " + (i + 1) + " (" + (LABELS[blocks[i].type] || blocks[i].type) + ")";
  }

  // ---------------------------------------------------------------- rendering

  function fieldControl(i, field) {
    var block = blocks[i];
    var id = "b" + i + "-" + field.key;
    var wrap = el("div", { "class": "field" });
    wrap.appendChild(el("label", { "for": id }, field.label));
    var input;
    if (field.kind === "textarea" || field.kind === "lines") {
      input = el("textarea", { id: id, rows: field.kind === "lines" ? "4" : "6" });
      input.value = field.kind === "lines" ? (block[field.key] || []).join("\n") : (block[field.key] || "");
    } else {
      input = el("input", { id: id, type: field.kind === "url" ? "url" : "text" });
      if (field.max) { input.setAttribute("maxlength", String(field.max)); }
      input.value = block[field.key] || "";
    }
    input.dataset.block = String(i);
    input.dataset.key = field.key;
    input.dataset.kind = field.kind;
    input.addEventListener("input", onFieldInput);
    wrap.appendChild(input);
    return wrap;
  }

  function socialControls(i) {
    var block = blocks[i];
    var box = el("div", { "class": "social-links" });
    (block.links || []).forEach(function (link, n) {
      var row = el("div", { "class": "social-row" });
      var selId = "b" + i + "-net" + n;
      var urlId = "b" + i + "-url" + n;
      row.appendChild(el("label", { "for": selId }, "Réseau du lien " + (n + 1)));
      var select = el("select", { id: selId });
      cfg.networks.forEach(function (net) {
        var opt = el("option", { value: net.key }, net.label);
        if (net.key === link.network) { opt.selected = true; }
        select.appendChild(opt);
      });
      select.addEventListener("change", function () {
        blocks[i].links[n].network = select.value; changed();
      });
      row.appendChild(select);
      row.appendChild(el("label", { "for": urlId }, "Adresse du lien " + (n + 1)));
      var url = el("input", { id: urlId, type: "url" });
      url.value = link.url || "";
      url.addEventListener("input", function () { blocks[i].links[n].url = url.value; changed(); });
      row.appendChild(url);
      var remove = el("button", { type: "button", "class": "btn-small btn-secondary",
        "aria-label": "Retirer le lien " + (n + 1) + " du " + blockName(i).toLowerCase() }, "Retirer");
      remove.addEventListener("click", function () {
        blocks[i].links.splice(n, 1);
        render("b" + i + "-add-link");
        changed();
        announce("Lien retiré.");
      });
      row.appendChild(remove);
      box.appendChild(row);
    });
    var add = el("button", { type: "button", id: "b" + i + "-add-link", "class": "btn-small btn-secondary" },
      "Ajouter un lien");
    add.addEventListener("click", function () {
      blocks[i].links = blocks[i].links || [];
      blocks[i].links.push({ network: "website", url: "" });
      render("b" + i + "-url" + (blocks[i].links.length - 1));
      changed();
    });
    box.appendChild(add);
    return box;
  }

  function toolButton(i, action, label, disabled) {
    var button = el("button", {
      type: "button", "class": "btn-small btn-secondary", id: "b" + i + "-" + action,
      "aria-label": label + " : " + blockName(i).toLowerCase()
    }, label);
    button.dataset.action = action;
    button.dataset.block = String(i);
    if (disabled) { button.disabled = true; }
    button.addEventListener("click", onTool);
    return button;
  }

  function render(focusId) {
    list.textContent = "";
    blocks.forEach(function (block, i) {
      var item = el("li", { "class": "block", id: "block-" + i });
      var fieldset = el("fieldset");
      fieldset.appendChild(el("legend", { id: "b" + i + "-legend", tabindex: "-1" }, blockName(i)));
      if (NOTES[block.type]) { fieldset.appendChild(el("p", { "class": "muted" }, NOTES[block.type])); }
      (FIELDS[block.type] || []).forEach(function (field) {
        fieldset.appendChild(fieldControl(i, field));
      });
      if (block.type === "social") { fieldset.appendChild(socialControls(i)); }
      var tools = el("div", { "class": "block-tools" });
      tools.appendChild(toolButton(i, "up", "Monter", i === 0));
      tools.appendChild(toolButton(i, "down", "Descendre", i === blocks.length - 1));
      tools.appendChild(toolButton(i, "delete", "Supprimer", false));
      fieldset.appendChild(tools);
      item.appendChild(fieldset);
      list.appendChild(item);
    });
    if (focusId) {
      var target = document.getElementById(focusId);
      if (target && !target.disabled) { target.focus(); }
      else if (target) {
        var legend = target.closest("fieldset").querySelector("legend");
        if (legend) { legend.focus(); }
      }
    }
  }

  // ------------------------------------------------------------------- events

  function onFieldInput(event) {
    var input = event.target;
    var i = Number(input.dataset.block);
    var key = input.dataset.key;
    if (input.dataset.kind === "lines") {
      blocks[i][key] = input.value.split("\n").map(function (s) { return s.trim(); })
        .filter(function (s) { return s.length > 0; });
    } else if (input.value === "" && (key === "href")) {
      delete blocks[i][key];
    } else {
      blocks[i][key] = input.value;
    }
    changed();
  }

  function onTool(event) {
    var button = event.currentTarget;
    var i = Number(button.dataset.block);
    var action = button.dataset.action;
    var moved;
    if (action === "up" && i > 0) {
      moved = blocks.splice(i, 1)[0];
      blocks.splice(i - 1, 0, moved);
      render("b" + (i - 1) + "-up");
      announce(blockName(i - 1) + " déplacé en position " + i + ".");
    } else if (action === "down" && i < blocks.length - 1) {
      moved = blocks.splice(i, 1)[0];
      blocks.splice(i + 1, 0, moved);
      render("b" + (i + 1) + "-down");
      announce(blockName(i + 1) + " déplacé en position " + (i + 2) + ".");
    } else if (action === "delete") {
      var name = blockName(i);
      blocks.splice(i, 1);
      var next = blocks.length === 0 ? null : "b" + Math.min(i, blocks.length - 1) + "-legend";
      render(next);
      if (!next) { typeSelect.focus(); }
      announce(name + " supprimé.");
    } else {
      return;
    }
    changed();
  }

  function addBlock() {
    var type = typeSelect.value;
    blocks.push(Object.assign({ type: type }, JSON.parse(JSON.stringify(DEFAULTS[type] || {}))));
    var i = blocks.length - 1;
    var first = (FIELDS[type] || [])[0];
    render(first ? "b" + i + "-" + first.key : (type === "social" ? "b" + i + "-net0" : "b" + i + "-legend"));
    announce(blockName(i) + " ajouté à la fin du message.");
    changed();
  }

  cfg.types.forEach(function (t) {
    if (cfg.kind !== "invitation" && (t.type === "event" || t.type === "rsvp")) { return; }
    typeSelect.appendChild(el("option", { value: t.type }, t.label.charAt(0).toUpperCase() + t.label.slice(1)));
  });
  addButton.addEventListener("click", addBlock);

  // ------------------------------------------------------------------- saving

  var timer = null;
  var dirty = false;
  var saving = null;

  // No announcement here: a live region speaking at every keystroke would drown the
  // messages that matter (block moved, saved, refused).
  function changed() {
    dirty = true;
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { save(); }, 800);
  }

  function value(id) {
    var node = document.getElementById(id);
    return node ? node.value : "";
  }

  function payload() {
    var data = {
      name: value("f-name"),
      subject: value("f-subject"),
      preheader: value("f-preheader"),
      list_ids: Array.prototype.map.call(
        form.querySelectorAll('input[name="list_ids"]:checked'),
        function (box) { return Number(box.value); }),
      blocks: blocks
    };
    if (cfg.kind === "invitation") {
      var capacity = value("ev-capacity");
      data.event = {
        title: value("ev-title"),
        starts_at: value("ev-starts"),
        ends_at: value("ev-ends"),
        location: value("ev-location"),
        map_url: value("ev-map"),
        rsvp_deadline: value("ev-deadline") || null,
        capacity: capacity ? Number(capacity) : null
      };
    }
    return data;
  }

  function clearErrors() {
    errorNode.hidden = true;
    errorNode.textContent = "";
    Array.prototype.forEach.call(list.querySelectorAll(".has-error"), function (node) {
      node.classList.remove("has-error");
    });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (node) {
      node.removeAttribute("aria-invalid");
    });
  }

  function showError(error) {
    errorNode.textContent = error.message || "Enregistrement impossible.";
    errorNode.hidden = false;
    var details = error.details || {};
    if (typeof details.block === "number") {
      var item = document.getElementById("block-" + details.block);
      if (item) { item.classList.add("has-error"); }
      var input = document.getElementById("b" + details.block + "-" + details.field);
      if (input) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", "save-error"); }
    }
    announce("Non enregistré : " + errorNode.textContent);
  }

  function renderChecks(result) {
    var box = document.getElementById("checks");
    if (!box) { return; }
    box.textContent = "";
    if (result.layout_error) {
      box.appendChild(el("p", { "class": "error" }, result.layout_error));
      return;
    }
    if (!result.checks.length) {
      box.appendChild(el("p", { "class": "badge badge-ok" }, "Aucun problème détecté."));
      return;
    }
    var ul = el("ul", { "class": "check-list" });
    result.checks.forEach(function (f) {
      var li = el("li", { "class": "check check-" + f.level });
      li.appendChild(el("span", { "class": "badge badge-" + (f.level === "error" ? "risk" : "warn") },
        f.level === "error" ? "À corriger" : "Conseil"));
      li.appendChild(document.createTextNode(" " + f.message));
      ul.appendChild(li);
    });
    box.appendChild(ul);
  }

  function refreshPreview() {
    var contact = document.getElementById("contact_id");
    var query = "?v=" + encodeURIComponent(version) +
      (contact && contact.value ? "&contact_id=" + encodeURIComponent(contact.value) : "");
    ["frame-desktop", "frame-phone"].forEach(function (id) {
      var frame = document.getElementById(id);
      if (frame) { frame.setAttribute("src", cfg.previewUrl + query); }
    });
    fetch(cfg.previewJsonUrl + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        var pane = document.getElementById("preview-text");
        if (data && pane) { pane.textContent = data.text; }
      })
      .catch(function () { /* the frames still show the HTML */ });
  }

  function save() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (saving) {
      return saving.then(function () { return dirty ? save() : true; });
    }
    dirty = false;
    saving = fetch(cfg.saveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(payload())
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; },
        function () { return { ok: false, body: { error: { message: "Réponse illisible du serveur (" + response.status + ")." } } }; });
    }).then(function (result) {
      saving = null;
      if (!result.ok) {
        dirty = true;
        showError(result.body.error || {});
        return false;
      }
      clearErrors();
      var body = result.body;
      version = body.version;
      var badge = document.getElementById("campaign-status");
      if (badge && body.status_label) { badge.textContent = body.status_label; }
      renderChecks(body);
      var help = document.getElementById("submit-help");
      if (help) { help.hidden = body.can_submit; }
      var time = new Date().toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" });
      announce((body.saved ? "Enregistré à " + time + " (version " + version + ")." : "Aucune modification à enregistrer.") +
        (body.notice ? " " + body.notice : ""));
      if (body.saved) { refreshPreview(); }
      return true;
    }, function () {
      saving = null;
      dirty = true;
      showError({ message: "Connexion perdue : les modifications n'ont pas été enregistrées." });
      return false;
    });
    return saving;
  }

  form.addEventListener("input", function (event) {
    if (!event.target.dataset.block && event.target.id !== "new-block-type") { changed(); }
  });
  form.addEventListener("change", function (event) {
    if (event.target.type === "checkbox") { changed(); }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    save().then(function (ok) {
      if (!ok) { errorNode.focus(); }
    });
  });

  // Review and test forms: save pending edits first, so what is sent is what is shown.
  Array.prototype.forEach.call(document.querySelectorAll("form.action-form"), function (other) {
    other.addEventListener("submit", function (event) {
      if (!dirty && !saving) { return; }
      event.preventDefault();
      save().then(function (ok) {
        if (ok) { other.submit(); } else { errorNode.focus(); }
      });
    });
  });

  render(null);
}());
