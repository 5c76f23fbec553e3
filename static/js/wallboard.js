/* The supervisors' wallboard: the server pushes a fresh picture over /ws/v1/wallboard whenever
 * something changes (apps/monitoring/consumers.py); this page only draws it. Nothing polls. */
(function () {
  "use strict";

  const app = document.getElementById("wallboard");
  if (!app) return;
  const RB = window.RB;
  const $ = (id) => document.getElementById(id);
  const conn = $("conn-status");

  const PRESENCE = {
    ready: gettext("就绪"),
    ringing: gettext("振铃"),
    busy: gettext("通话中"),
    after_call_work: gettext("话后整理"),
    break: gettext("小休"),
    offline: gettext("离线"),
  };
  const QUALITY = {
    good: gettext("良好"),
    fair: gettext("一般"),
    poor: gettext("较差"),
    none: gettext("暂无"),
  };
  const QUEUES = {
    compose: gettext("录像合成"),
    qc: gettext("自动质检"),
    banking: gettext("业务回执"),
    webhooks: gettext("回调推送"),
  };

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.max(0, Math.round(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function pct(value) {
    return value === null || value === undefined ? "—" : value + "%";
  }

  function metric(name, text) {
    app.querySelector('[data-metric="' + name + '"]').textContent = text;
  }

  function row(cells) {
    const tr = RB.el("tr");
    for (const cell of cells) {
      if (cell instanceof Node) {
        const td = RB.el("td");
        td.appendChild(cell);
        tr.appendChild(td);
      } else {
        tr.appendChild(RB.el("td", "", String(cell)));
      }
    }
    return tr;
  }

  function fill(tbody, rows) {
    tbody.textContent = "";
    for (const r of rows) tbody.appendChild(r);
  }

  function alertText(a) {
    switch (a.kind) {
      case "long_wait":
        return interpolate(gettext("%s 排队等待过久"), [a.name]);
      case "no_media_worker":
        return gettext("没有在线的媒体节点，新通话无法接通音视频");
      case "media_capacity":
        return gettext("媒体节点容量将满");
      case "process_restarted":
        return interpolate(gettext("进程 %s 异常退出，已自动重启"), [a.process]);
      default:
        return gettext("告警");
    }
  }

  function renderCalls(calls) {
    fill(
      $("live-rows"),
      calls.map((c) => {
        const badge = RB.el("span", "wb-badge", QUALITY[c.quality] || QUALITY.none);
        badge.dataset.quality = c.quality;
        if (c.mos !== null) badge.title = "MOS " + c.mos;
        const link = RB.el("a", "btn btn-small btn-outline", gettext("监听"));
        link.href = app.dataset.monitorUrl + "?call=" + encodeURIComponent(c.call_id);
        const tr = row([c.number, c.business, c.agent || "—", duration(c.duration_seconds), badge, link]);
        tr.dataset.callId = c.call_id;
        tr.cells[0].className = "mono";
        return tr;
      }),
    );
    $("live-empty").hidden = calls.length > 0;
  }

  let chart = null;
  function renderChart(hours) {
    if (!window.Chart) return; // the numbers above do not depend on it
    const labels = hours.map((h) => h.hour + ":00");
    const answered = hours.map((h) => h.answered);
    const abandoned = hours.map((h) => h.abandoned);
    if (chart === null) {
      chart = new window.Chart($("wb-chart"), {
        type: "bar",
        data: {
          labels: labels,
          datasets: [
            { label: gettext("接通"), data: answered, backgroundColor: "#2f7dd1" },
            { label: gettext("放弃"), data: abandoned, backgroundColor: "#e0665e" },
          ],
        },
        options: {
          animation: false,
          maintainAspectRatio: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        },
      });
      return;
    }
    chart.data.labels = labels;
    chart.data.datasets[0].data = answered;
    chart.data.datasets[1].data = abandoned;
    chart.update();
  }

  function render(p) {
    metric("waiting", String(p.waiting_total));
    metric("longest-wait", duration(p.longest_wait_seconds));
    metric("in-progress", String(p.in_progress.length));
    metric("service-level", pct(p.day.service_level_pct));
    metric("abandon", pct(p.day.abandon_pct));
    metric("aht", duration(p.day.aht_seconds));
    metric("answered", String(p.day.answered));
    $("sl-label").textContent = interpolate(gettext("服务水平（%s 秒内接通）"), [p.day.service_level_seconds]);
    fill(
      $("wb-agents"),
      Object.keys(PRESENCE).map((k) => {
        const tr = row([PRESENCE[k], p.agents[k] || 0]);
        tr.dataset.presence = k;
        return tr;
      }),
    );
    fill(
      $("wb-waiting"),
      p.waiting.map((w) => {
        const tr = row([w.name, w.waiting, duration(w.longest_wait_seconds)]);
        tr.dataset.skill = w.skill;
        return tr;
      }),
    );
    renderCalls(p.in_progress);
    fill(
      $("wb-media"),
      p.media_workers.map((m) => row([m.host + " · " + m.pid, m.calls + " / " + m.capacity])),
    );
    $("wb-media-empty").hidden = p.media_workers.length > 0;
    fill(
      $("wb-jobs"),
      p.job_queues.map((q) => row([QUEUES[q.queue] || q.queue, q.queued, q.running, q.failed])),
    );
    const alerts = $("wb-alerts");
    alerts.textContent = "";
    for (const a of p.alerts) {
      const li = RB.el("li", "", alertText(a));
      li.dataset.kind = a.kind;
      alerts.appendChild(li);
    }
    $("wb-alerts-empty").hidden = p.alerts.length > 0;
    renderChart(p.day.hours);
    $("wb-updated").textContent = interpolate(gettext("更新于 %s"), [new Date(p.at).toLocaleTimeString()]);
    app.dataset.updatedAt = p.at;
  }

  const STATUS = {
    connecting: gettext("连接中"),
    open: gettext("已连接"),
    closed: gettext("连接已断开，正在重连"),
  };
  RB.wallboardFeed(render, (state) => {
    conn.dataset.state = state;
    conn.textContent = STATUS[state];
  });
})();
