// Zone editor: draw and edit a polygon or rectangle over the camera frame (an SVG overlay).
// Points are normalised [x, y] in [0, 1]; the coordinates textarea always holds them as JSON,
// and typing valid JSON there redraws the shape. The server validates on save (model clean()).
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";

  function round(v) {
    return Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
  }

  function parsePoints(text) {
    try {
      var data = JSON.parse(text);
      if (!Array.isArray(data)) { return null; }
      for (var i = 0; i < data.length; i++) {
        var p = data[i];
        if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== "number" || typeof p[1] !== "number") { return null; }
      }
      return data.map(function (p) { return [p[0], p[1]]; });
    } catch (err) {
      return null;
    }
  }

  function init(root) {
    var svg = root.querySelector("#zone-canvas");
    var form = root.querySelector("#zone-form");
    if (!svg || !form || svg.dataset.zoneEditor === "on") { return; }
    svg.dataset.zoneEditor = "on";
    var textarea = form.querySelector('textarea[name="coordinates"]');
    var shapeSelect = form.querySelector('select[name="shape"]');
    var colorInput = form.querySelector('input[name="color"]');
    var layer = svg.querySelector("#zone-edit-layer");
    var W = parseFloat(svg.dataset.width) || 1600;
    var H = parseFloat(svg.dataset.height) || 900;
    var radius = Math.max(W, H) / 140;
    var toolbar = root.querySelector(".zone-toolbar");
    var points = parsePoints(textarea ? textarea.value : "[]") || [];
    var mode = shapeSelect && shapeSelect.value === "rectangle" ? "rectangle" : "polygon";
    var drag = null; // {index} while moving a vertex, {start:[x,y]} while drawing a rectangle
    var editable = !!form.querySelector('button[type="submit"]');

    function toNormalised(evt) {
      var pt = svg.createSVGPoint();
      pt.x = evt.clientX;
      pt.y = evt.clientY;
      var ctm = svg.getScreenCTM();
      if (!ctm) { return [0, 0]; }
      var p = pt.matrixTransform(ctm.inverse());
      return [round(p.x / W), round(p.y / H)];
    }

    function sync() {
      if (textarea) { textarea.value = JSON.stringify(points); }
      render();
    }

    function render() {
      while (layer.firstChild) { layer.removeChild(layer.firstChild); }
      var colour = colorInput && /^#[0-9a-fA-F]{6}$/.test(colorInput.value) ? colorInput.value : "#3B82F6";
      if (points.length >= 2) {
        var poly = document.createElementNS(SVG_NS, points.length >= 3 ? "polygon" : "polyline");
        poly.setAttribute("points", points.map(function (p) { return p[0] * W + "," + p[1] * H; }).join(" "));
        poly.setAttribute("class", "zone-current");
        poly.setAttribute("stroke", colour);
        poly.setAttribute("fill", colour);
        layer.appendChild(poly);
      }
      points.forEach(function (p, i) {
        var c = document.createElementNS(SVG_NS, "circle");
        c.setAttribute("cx", p[0] * W);
        c.setAttribute("cy", p[1] * H);
        c.setAttribute("r", radius);
        c.setAttribute("class", "zone-vertex");
        c.dataset.index = String(i);
        var title = document.createElementNS(SVG_NS, "title");
        title.textContent = "Point " + (i + 1) + ": " + p[0] + ", " + p[1];
        c.appendChild(title);
        layer.appendChild(c);
      });
    }

    function setMode(next) {
      mode = next;
      if (toolbar) {
        toolbar.querySelectorAll("[data-zone-mode]").forEach(function (b) {
          b.setAttribute("aria-pressed", b.dataset.zoneMode === mode ? "true" : "false");
        });
      }
      if (shapeSelect && shapeSelect.value !== mode) { shapeSelect.value = mode; }
    }

    function moveRectangleCorner(i, x, y) {
      var n = points.length;
      var old = points[i];
      [(i + n - 1) % n, (i + 1) % n].forEach(function (j) {
        if (points[j][0] === old[0]) { points[j] = [x, points[j][1]]; } else { points[j] = [points[j][0], y]; }
      });
      points[i] = [x, y];
    }

    svg.addEventListener("pointerdown", function (evt) {
      if (!editable || evt.button !== 0) { return; }
      var target = evt.target;
      var p = toNormalised(evt);
      if (target.classList && target.classList.contains("zone-vertex")) {
        drag = { index: parseInt(target.dataset.index, 10) };
      } else if (mode === "rectangle") {
        drag = { start: p, before: points };
        points = [p, [p[0], p[1]], [p[0], p[1]], [p[0], p[1]]];
        sync();
      } else {
        points.push(p);
        sync();
        return;
      }
      svg.setPointerCapture(evt.pointerId);
      evt.preventDefault();
    });

    svg.addEventListener("pointermove", function (evt) {
      if (!drag) { return; }
      var p = toNormalised(evt);
      if (drag.start) {
        var s = drag.start;
        points = [[s[0], s[1]], [p[0], s[1]], [p[0], p[1]], [s[0], p[1]]];
      } else if (mode === "rectangle" && points.length === 4) {
        moveRectangleCorner(drag.index, p[0], p[1]);
      } else {
        points[drag.index] = p;
      }
      sync();
    });

    function endDrag(evt) {
      if (!drag) { return; }
      if (drag.start && (points[0][0] === points[2][0] || points[0][1] === points[2][1])) {
        points = drag.before; // a click without a drag draws no rectangle
      }
      drag = null;
      if (svg.hasPointerCapture && svg.hasPointerCapture(evt.pointerId)) { svg.releasePointerCapture(evt.pointerId); }
      sync();
    }
    svg.addEventListener("pointerup", endDrag);
    svg.addEventListener("pointercancel", endDrag);

    svg.addEventListener("dblclick", function (evt) {
      if (!editable) { return; }
      var t = evt.target;
      if (t.classList && t.classList.contains("zone-vertex")) {
        points.splice(parseInt(t.dataset.index, 10), 1);
        sync();
      }
    });

    if (toolbar) {
      toolbar.addEventListener("click", function (evt) {
        var b = evt.target.closest("button");
        if (!b) { return; }
        if (b.dataset.zoneMode) {
          setMode(b.dataset.zoneMode);
        } else if (b.dataset.zoneAction === "undo") {
          points.pop();
          sync();
        } else if (b.dataset.zoneAction === "clear") {
          points = [];
          sync();
        }
      });
    }

    if (textarea) {
      textarea.addEventListener("input", function () {
        var parsed = parsePoints(textarea.value);
        if (parsed) {
          points = parsed;
          render();
        }
      });
    }
    if (shapeSelect) {
      shapeSelect.addEventListener("change", function () { setMode(shapeSelect.value === "rectangle" ? "rectangle" : "polygon"); });
    }
    if (colorInput) { colorInput.addEventListener("input", render); }

    setMode(mode);
    render();
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (evt) {
    var el = evt.detail && evt.detail.elt;
    init(el && el.querySelector ? (el.querySelector("#zone-canvas") ? el : document) : document);
  });
})();
