/* Kopilka's web-shop widget.
 *
 * A shop's page includes it with one tag:
 *
 *   <div id="kopilka-widget"></div>
 *   <script src="https://kopilka.example/widget/demo/widget.js" data-token="kw_…"
 *           data-lang="ru" data-max-points="500" async></script>
 *
 * It draws, inside a shadow root of that element (so that the shop's style and the
 * widget's leave each other alone), the signed-in customer's balance, their tier with its
 * progress and the sentence of what is left, and the rewards they can afford. With
 * `data-max-points` (checkout: how many points the order can take), a form pays part of the
 * order with points: it puts them on hold through the widget's API and fires `kopilka:hold`
 * on the element, whose `detail.id` the shop's server captures when the order is paid
 * (`POST /v1/redemptions/{id}/capture`) or voids. `kopilka:refresh` on the element reloads
 * the figures.
 *
 * Optional attributes: `data-lang` (ru | en; else the page's <html lang>), `data-target`
 * (the element's id; `kopilka-widget`). Nothing here evaluates text as code, and every text
 * reaches the page as text, never as markup.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.src) {
    return;
  }

  var TEXTS = {
    en: {
      title: "Your points",
      points: { one: "point", other: "points" },
      pending: "On the way: {n}",
      held: "Reserved: {n}",
      tier: "Tier: {name}",
      topTier: "You have the highest tier.",
      progress: "Progress to {tier}",
      rewards: "Rewards you can get",
      noRewards: "Keep collecting points: rewards are coming.",
      payTitle: "Pay with points",
      payLabel: "Points to pay",
      payHint: "At most {n} for this order.",
      payButton: "Pay {n} {points}",
      paying: "Reserving…",
      paid: "Points reserved for this order: {n}.",
      notEnough: "Not enough points to pay with them yet.",
      tooMany: "You can pay at most {n}.",
      wrongNumber: "Enter a whole number of points.",
      ended: "The session has ended: reload the page.",
      failed: "Could not reach the loyalty program. Try again.",
      loading: "Loading…",
    },
    ru: {
      title: "Ваши баллы",
      points: { one: "балл", few: "балла", many: "баллов", other: "балла" },
      pending: "Скоро начислятся: {n}",
      held: "Зарезервировано: {n}",
      tier: "Уровень: {name}",
      topTier: "У вас высший уровень.",
      progress: "Путь к уровню {tier}",
      rewards: "Награды, доступные вам",
      noRewards: "Копите баллы — награды уже близко.",
      payTitle: "Оплата баллами",
      payLabel: "Сколько баллов списать",
      payHint: "Для этого заказа — не больше {n}.",
      payButton: "Списать {n} {points}",
      paying: "Резервируем…",
      paid: "Для заказа зарезервировано баллов: {n}.",
      notEnough: "Баллов пока недостаточно для оплаты.",
      tooMany: "Можно списать не больше {n}.",
      wrongNumber: "Введите целое число баллов.",
      ended: "Сессия истекла: обновите страницу.",
      failed: "Не удалось связаться с программой лояльности. Попробуйте ещё раз.",
      loading: "Загрузка…",
    },
  };

  var config = readConfig(script);
  var texts = TEXTS[config.lang];
  var numbers = new Intl.NumberFormat(config.lang);
  var plurals = new Intl.PluralRules(config.lang);

  function readConfig(tag) {
    var data = tag.dataset;
    var base = new URL(".", tag.src).href; // …/widget/<slug>/
    var max = null;
    if (data.maxPoints !== undefined) {
      max = /^\d{1,13}$/.test(data.maxPoints) ? parseInt(data.maxPoints, 10) : 0;
    }
    return {
      base: base,
      api: base + "api/",
      token: data.token || "",
      lang: language(data.lang || document.documentElement.lang),
      maxPoints: max,
      target: data.target || "kopilka-widget",
    };
  }

  function language(given) {
    var code = (given || "").slice(0, 2).toLowerCase();
    if (TEXTS[code]) {
      return code;
    }
    return code ? "en" : "ru";
  }

  // --- texts ---------------------------------------------------------------------------

  function say(key, values) {
    return texts[key].replace(/\{(\w+)\}/g, function (whole, name) {
      return values && values[name] !== undefined ? String(values[name]) : whole;
    });
  }

  function pointsWord(n) {
    var forms = texts.points;
    return forms[plurals.select(n)] || forms.other;
  }

  function points(n) {
    return numbers.format(n) + "\u00a0" + pointsWord(n);
  }

  // --- the DOM ---------------------------------------------------------------------------

  function el(name, attributes, children) {
    var node = document.createElement(name);
    Object.keys(attributes || {}).forEach(function (key) {
      if (key === "text") {
        node.textContent = attributes.text;
      } else {
        node.setAttribute(key, attributes[key]);
      }
    });
    (children || []).forEach(function (child) {
      if (child) {
        node.appendChild(child);
      }
    });
    return node;
  }

  function mount(host) {
    var root = host.shadowRoot || host.attachShadow({ mode: "open" });
    while (root.firstChild) {
      root.removeChild(root.firstChild);
    }
    var panel = el("section", { class: "kw", lang: config.lang, "aria-labelledby": "kw-title" });
    panel.hidden = true;
    var style = el("link", { rel: "stylesheet", href: config.base + "widget.css" });
    // Shown once its style is there (or could not come): never a flash of bare markup.
    var show = function () {
      panel.hidden = false;
    };
    style.addEventListener("load", show);
    style.addEventListener("error", show);
    root.appendChild(style);
    root.appendChild(panel);
    return panel;
  }

  function render(panel, summary, state) {
    while (panel.firstChild) {
      panel.removeChild(panel.firstChild);
    }
    panel.appendChild(el("h2", { id: "kw-title", text: texts.title }));
    var balance = summary.balance;
    panel.appendChild(
      el("p", { class: "kw-balance" }, [
        el("span", { class: "kw-amount", text: numbers.format(balance.available) }),
        el("span", { class: "kw-unit", text: " " + pointsWord(balance.available) }),
      ])
    );
    var extra = [];
    if (balance.pending > 0) {
      extra.push(say("pending", { n: numbers.format(balance.pending) }));
    }
    if (balance.held > 0) {
      extra.push(say("held", { n: numbers.format(balance.held) }));
    }
    if (extra.length) {
      panel.appendChild(el("p", { class: "kw-sub", text: extra.join(" · ") }));
    }
    if (summary.tier) {
      panel.appendChild(tierBlock(summary.tier));
    }
    panel.appendChild(rewardsBlock(summary.rewards));
    var limit = payLimit(summary);
    if (limit !== null) {
      panel.appendChild(payForm(limit, state));
    }
  }

  function tierBlock(tier) {
    var block = el("div", { class: "kw-tier" }, [
      el("p", { class: "kw-tier-name", text: say("tier", { name: tier.name }) }),
    ]);
    if (!tier.next) {
      block.appendChild(el("p", { class: "kw-sentence", text: texts.topTier }));
      return block;
    }
    var percent = Math.round(Math.max(0, Math.min(1, tier.next.share)) * 100);
    var fill = el("span", { class: "kw-fill" });
    fill.style.width = percent + "%"; // the CSSOM, which a page's policy allows
    block.appendChild(
      el(
        "div",
        {
          class: "kw-bar",
          role: "progressbar",
          "aria-valuemin": "0",
          "aria-valuemax": "100",
          "aria-valuenow": String(percent),
          "aria-label": say("progress", { tier: tier.next.name }),
        },
        [fill]
      )
    );
    if (tier.next.sentence) {
      block.appendChild(el("p", { class: "kw-sentence", text: tier.next.sentence }));
    }
    return block;
  }

  function rewardsBlock(rewards) {
    var block = el("div", { class: "kw-rewards" }, [el("h3", { text: texts.rewards })]);
    if (!rewards.length) {
      block.appendChild(el("p", { class: "kw-muted", text: texts.noRewards }));
      return block;
    }
    block.appendChild(
      el(
        "ul",
        {},
        rewards.map(function (reward) {
          return el("li", {}, [
            el("span", { class: "kw-reward-name", text: reward.name }),
            el("span", { class: "kw-price", text: points(reward.price) }),
          ]);
        })
      )
    );
    return block;
  }

  // --- paying with points ------------------------------------------------------------------

  // What this order may take: the balance, what the shop allows on the tag and what its
  // server allowed the session. Null: no form (not a checkout page).
  function payLimit(summary) {
    if (config.maxPoints === null && summary.points_left === null) {
      return null;
    }
    var limit = summary.balance.available;
    if (config.maxPoints !== null) {
      limit = Math.min(limit, config.maxPoints);
    }
    if (summary.points_left !== null) {
      limit = Math.min(limit, summary.points_left);
    }
    return Math.max(limit, 0);
  }

  function payForm(limit, state) {
    var form = el("form", { class: "kw-pay", novalidate: "" });
    form.appendChild(el("h3", { text: texts.payTitle }));
    var status = el("p", { class: "kw-status", role: "status", "aria-live": "polite" });
    if (state.hold) {
      status.textContent = say("paid", { n: numbers.format(state.hold.points) });
      form.appendChild(status);
      return form;
    }
    if (limit < 1) {
      form.appendChild(el("p", { class: "kw-muted", text: texts.notEnough }));
      return form;
    }
    var input = el("input", {
      id: "kw-points",
      name: "points",
      type: "number",
      inputmode: "numeric",
      min: "1",
      max: String(limit),
      step: "1",
      required: "",
      value: String(limit),
    });
    var button = el("button", { type: "submit", class: "kw-button" });
    var label = function () {
      var n = parseInt(input.value, 10);
      n = isNaN(n) ? 0 : n;
      button.textContent = say("payButton", { n: numbers.format(n), points: pointsWord(n) });
    };
    label();
    input.addEventListener("input", label);
    form.appendChild(el("label", { for: "kw-points", text: texts.payLabel }));
    form.appendChild(input);
    form.appendChild(
      el("p", { class: "kw-hint", text: say("payHint", { n: numbers.format(limit) }) })
    );
    form.appendChild(button);
    form.appendChild(status);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var raw = input.value.trim();
      if (!/^\d{1,13}$/.test(raw) || parseInt(raw, 10) < 1) {
        status.textContent = texts.wrongNumber;
        return;
      }
      var n = parseInt(raw, 10);
      if (n > limit) {
        status.textContent = say("tooMany", { n: numbers.format(limit) });
        return;
      }
      button.disabled = true;
      status.textContent = texts.paying;
      placeHold(n, state).then(
        function (hold) {
          state.hold = hold;
          state.host.dispatchEvent(
            new CustomEvent("kopilka:hold", { bubbles: true, composed: true, detail: hold })
          );
          load(state);
        },
        function (problem) {
          button.disabled = false;
          status.textContent = explain(problem, limit);
        }
      );
    });
    return form;
  }

  // One key per payment: a retry after a lost answer sends the same key (and the server
  // answers the first hold); any answer, or other points, starts a new payment.
  function keyFor(n, state) {
    if (!state.attempt || state.attempt.points !== n) {
      state.attempt = { points: n, key: newKey() };
    }
    return state.attempt.key;
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      })
      .join("");
  }

  function placeHold(n, state) {
    var key = keyFor(n, state);
    return call("holds", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      body: JSON.stringify({ points: n }),
    }).then(
      function (hold) {
        state.attempt = null;
        return hold;
      },
      function (problem) {
        if (problem.status) {
          state.attempt = null; // answered: the next try is a new payment
        }
        throw problem;
      }
    );
  }

  function explain(problem, limit) {
    if (problem.status === 401) {
      return texts.ended;
    }
    var field = problem.errors && problem.errors[0] && problem.errors[0].field;
    if (problem.status === 422 && field === "points") {
      var allowed = typeof problem.allowed === "number" ? problem.allowed : null;
      var available = typeof problem.available === "number" ? problem.available : null;
      var most = allowed !== null ? allowed : available !== null ? available : limit;
      return most > 0 ? say("tooMany", { n: numbers.format(most) }) : texts.notEnough;
    }
    return texts.failed;
  }

  // --- the API -----------------------------------------------------------------------------

  function call(path, options) {
    var init = options || {};
    init.headers = init.headers || {};
    init.headers.Authorization = "Bearer " + config.token;
    init.credentials = "omit";
    init.cache = "no-store";
    init.mode = "cors";
    return fetch(config.api + path, init).then(
      function (response) {
        return response.json().then(
          function (body) {
            if (!response.ok) {
              body.status = response.status;
              throw body;
            }
            return body;
          },
          function () {
            throw { status: response.status };
          }
        );
      },
      function () {
        throw { status: 0 }; // no answer: the network, or a page the program does not allow
      }
    );
  }

  function load(state) {
    return call("summary?lang=" + config.lang).then(
      function (summary) {
        render(state.panel, summary, state);
        state.host.dispatchEvent(
          new CustomEvent("kopilka:ready", { bubbles: true, composed: true, detail: summary })
        );
      },
      function (problem) {
        while (state.panel.firstChild) {
          state.panel.removeChild(state.panel.firstChild);
        }
        state.panel.appendChild(el("h2", { id: "kw-title", text: texts.title }));
        state.panel.appendChild(
          el("p", {
            class: "kw-status",
            role: "status",
            text: problem.status === 401 ? texts.ended : texts.failed,
          })
        );
      }
    );
  }

  function start() {
    var host = document.getElementById(config.target);
    if (!host) {
      if (window.console) {
        window.console.warn("Kopilka widget: no element with id " + config.target);
      }
      return;
    }
    var panel = mount(host);
    panel.appendChild(el("p", { class: "kw-muted", text: texts.loading }));
    var state = { host: host, panel: panel, hold: null, attempt: null };
    host.addEventListener("kopilka:refresh", function () {
      load(state);
    });
    load(state);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
