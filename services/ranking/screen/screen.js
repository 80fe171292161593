// The big screen: a live TOP leaderboard fed by Server-Sent Events.
// Every name is put into the page as text (textContent), never as HTML.
(function () {
  "use strict";
  var WINDOWS = { month: "本月", quarter: "本季度", year: "本年度", all: "累计" };
  var CARDS = { green: "绿牌", yellow: "黄牌", red: "红牌" };
  var params = new URLSearchParams(location.search);
  var fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  var token = fragment.get("token") || params.get("token") || "";
  var windowKind = params.get("window") || "";
  var parts = location.pathname.split("/").filter(Boolean);
  var competition = parts.length > 1 ? decodeURIComponent(parts[1]) : "";
  var endsAt = null;
  var lastRanks = {};

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function status(state, text) {
    var node = document.getElementById("status");
    node.dataset.state = state;
    node.textContent = text;
  }

  function movement(value) {
    if (value === null || value === undefined) return el("span", "same", "–");
    if (value > 0) return el("span", "up", "▲" + value);
    if (value < 0) return el("span", "down", "▼" + (-value));
    return el("span", "same", "＝");
  }

  function render(board) {
    document.getElementById("title").textContent = board.name + " · " + (WINDOWS[board.window] || board.window) + "排行";
    document.title = board.name;
    document.getElementById("period-name").textContent = "统计期：" + board.period;
    endsAt = board.ends_at ? new Date(board.ends_at) : null;
    tick();
    var head = document.getElementById("head");
    while (head.children.length > 5) head.removeChild(head.lastChild);
    board.indicators.forEach(function (indicator) {
      head.appendChild(el("th", null, indicator.name + "（" + Math.round(Number(indicator.weight) * 100) + "%）"));
    });
    var body = document.getElementById("rows");
    body.textContent = "";
    var rows = board.rows.slice(0, board.top_n);
    document.getElementById("empty").style.display = rows.length ? "none" : "block";
    rows.forEach(function (row) {
      var tr = el("tr", row.rank <= 3 ? "top" + row.rank : "");
      tr.dataset.entity = row.entity_id;
      if (lastRanks[row.entity_id] !== undefined && (lastRanks[row.entity_id].rank !== row.rank || lastRanks[row.entity_id].score !== row.score)) {
        tr.classList.add("changed");
      }
      tr.appendChild(el("td", "rank", row.rank));
      var move = el("td", "move"); move.appendChild(movement(row.movement)); tr.appendChild(move);
      var name = el("td", "name", row.name);
      if (row.vetoed) name.appendChild(el("span", "flag", "一票否决"));
      if (row.escalated) name.appendChild(el("span", "flag", "约谈"));
      tr.appendChild(name);
      tr.appendChild(el("td", "score", row.score));
      var card = el("td", "colour");
      var chip = el("span", "card " + row.colour); chip.title = CARDS[row.colour] || row.colour;
      card.appendChild(chip); card.appendChild(el("span", "card-name", " " + (CARDS[row.colour] || "")));
      tr.appendChild(card);
      row.indicators.forEach(function (cell) {
        // "shown" is the value in human units (元/万元, 亩, 次 ...); never raw 分
        var td = el("td", "num", cell.shown !== undefined ? cell.shown : cell.raw);
        td.dataset.indicator = cell.key;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    lastRanks = {};
    board.rows.forEach(function (row) { lastRanks[row.entity_id] = { rank: row.rank, score: row.score }; });
    document.getElementById("updated").textContent = "更新于 " + new Date().toLocaleTimeString("zh-CN");
    document.body.dataset.version = board.version;
  }

  function tick() {
    var node = document.getElementById("countdown");
    if (!endsAt) { node.textContent = ""; return; }
    var left = Math.max(0, endsAt.getTime() - Date.now());
    var days = Math.floor(left / 86400000);
    var hours = Math.floor(left / 3600000) % 24;
    var minutes = Math.floor(left / 60000) % 60;
    var seconds = Math.floor(left / 1000) % 60;
    node.textContent = "距本期结束 " + days + "天 " + hours + "时 " + minutes + "分 " + seconds + "秒";
  }

  function connect() {
    var url = "/api/v1/ranking/competitions/" + encodeURIComponent(competition) + "/stream?access_token=" + encodeURIComponent(token);
    if (windowKind) url += "&window=" + encodeURIComponent(windowKind);
    var source = new EventSource(url);
    function onBoard(message) { status("live", "实时"); render(JSON.parse(message.data)); }
    source.addEventListener("snapshot", onBoard);
    source.addEventListener("change", onBoard);
    source.onopen = function () { status("live", "实时"); };
    source.onerror = function () { status("error", "重新连接中…"); };
  }

  function start() {
    if (competition) { connect(); return; }
    fetch("/api/v1/ranking/competitions", { headers: { Authorization: "Bearer " + token } })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        var shown = (body.competitions || []).filter(function (c) { return c.active_version; });
        if (!shown.length) { status("error", "暂无比拼"); setTimeout(start, 5000); return; }
        competition = shown[0].id;
        connect();
      })
      .catch(function () { status("error", "无法连接"); setTimeout(start, 5000); });
  }

  setInterval(tick, 1000);
  start();
})();
