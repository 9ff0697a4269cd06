"""The dashboard in headless Chromium against the embedded stack, with a test wallet in the page:
deposit, create a workflow through the form, watch it execute in the live feed, pause it; the
errors a person meets (rejected signature, empty escrow, backend down); a phone screen.
Screenshots of each page go to test-artifacts/dashboard/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.deploy import set_dev_price
from tests.dashboard.conftest import InjectedWallet, Stack

pytestmark = pytest.mark.slow
RECIPIENT = dev_role("recipient").address


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    made = context.new_page()
    made.set_default_timeout(30_000)  # chain waits on a shared, busy machine
    made.page_errors = []  # type: ignore[attr-defined]
    made.on("pageerror", lambda exc: made.page_errors.append(str(exc)))
    yield made
    context.close()
    assert not made.page_errors, f"JavaScript errors on the page: {made.page_errors}"


def open_dashboard(page: Any, stack: Stack, wallet: InjectedWallet | None) -> None:
    if wallet is not None:
        wallet.install(page)
    page.goto(stack.url + "/")
    page.wait_for_selector("body[data-ready='1']")


def connect(page: Any, wallet: InjectedWallet) -> None:
    page.click("[data-testid=connect]")
    page.wait_for_function("a => document.getElementById('acct-address').textContent === a", arg=wallet.account.address)


def fill_native(page: Any, *, trigger: str, amount: str = "0.001", **fields: str) -> None:
    page.select_option("[data-testid=trigger-type]", trigger)
    for name, value in fields.items():
        page.fill(f"#create-form [name={name}]", value)
    page.select_option("[data-testid=action-type]", "0")
    page.fill("#create-form [name=to]", RECIPIENT)
    page.fill("#create-form [name=amount]", amount)


def workflow_count(stack: Stack, owner: str) -> int:
    return int(httpx.get(f"{stack.url}/api/workflow/user/{owner}", timeout=10).json()["total"])


def test_create_watch_it_execute_and_pause(stack: Stack, page: Any, artifacts: Path) -> None:
    wallet = InjectedWallet(dev_role("user"), stack.chain.w3)
    open_dashboard(page, stack, wallet)
    page.wait_for_selector("[data-testid=prices] li[data-symbol=ethereum]")
    page.wait_for_selector("[data-testid=workers] li[data-role=executor]")
    price = page.inner_text("[data-testid=prices] li[data-symbol=ethereum]")
    assert re.search(r"\$3250 · oracle · updated \d+ s ago", price), price  # the dev feed's price, its own age
    page.screenshot(path=str(artifacts / "01-overview.png"), full_page=True)

    connect(page, wallet)
    page.fill("#deposit-amount", "2")
    page.click("[data-testid=deposit]")
    page.wait_for_function("() => /^2(\\.|\\s)/.test(document.getElementById('acct-balance').textContent)")
    assert wallet.calls.count("eth_sendTransaction") == 1

    # Validation as you type: a bad recipient is flagged on its field before anything is sent.
    # An amount beyond 2**53 wei: a float anywhere between the API and the wallet would change it.
    fill_native(page, trigger="1", interval="2", max_runs="50", amount="0.012345678912345679")
    page.fill("#create-form [name=to]", "0x1234")
    page.wait_for_selector("#create-form [name=to][aria-invalid=true]")
    assert "action_data.to" in page.inner_text("[data-testid=create-errors]")
    page.fill("#create-form [name=to]", RECIPIENT)
    page.wait_for_selector("#create-form[data-valid=true]")
    assert page.inner_text("[data-testid=create-errors]") == ""
    page.screenshot(path=str(artifacts / "02-create-form.png"), full_page=True)

    page.click("[data-testid=create-submit]")
    page.wait_for_function("() => /Created workflow #\\d+/.test(document.getElementById('create-status').textContent)")
    workflow_id = int(re.search(r"#(\d+)", page.inner_text("[data-testid=create-status]")).group(1))  # type: ignore[union-attr]
    assert [t["primaryType"] for t in wallet.signed] == ["CreateWorkflow"]
    assert int(wallet.signed[0]["message"]["spec"]["amount"]) == 12_345_678_912_345_679
    page.wait_for_selector(f"[data-testid=workflows] tr[data-workflow-id='{workflow_id}'][data-status=active]")

    # It executes: the live feed shows the run with its tx, gas, fee and latency.
    cells = executed(page, workflow_id)
    assert cells[5].startswith("0x") and cells[6].isdigit() and int(cells[6]) > 0, cells
    assert cells[7] != "–" and float(cells[8].removesuffix(" s")) >= 0, cells
    page.wait_for_selector("[data-testid=chart-success][data-points]")
    page.wait_for_selector("[data-testid=feed-state]:has-text('live')")
    runway = page.inner_text("[data-testid=runway]")
    assert re.search(r"\d+ more runs of your 1 active", runway), runway
    page.screenshot(path=str(artifacts / "03-executed.png"), full_page=True)

    page.click(f"[data-testid=pause-{workflow_id}]")
    page.wait_for_selector(f"[data-testid=workflows] tr[data-workflow-id='{workflow_id}'][data-status=paused]")
    page.wait_for_selector(f"[data-testid=banner]:has-text('Workflow #{workflow_id} paused (now paused)')")
    assert [t["primaryType"] for t in wallet.signed] == ["CreateWorkflow", "PauseWorkflow"]
    assert httpx.get(f"{stack.url}/api/workflow/{workflow_id}", timeout=10).json()["status"] == "paused"
    page.wait_for_selector(f"[data-testid=resume-{workflow_id}]")
    page.screenshot(path=str(artifacts / "04-paused.png"), full_page=True)

    # The seed's price workflow through the form: the feed names the price and where it came from.
    page.select_option("[data-testid=trigger-type]", "2")
    page.select_option("#create-form [name=token]", "ethereum")
    page.select_option("#create-form [name=comparator]", "0")
    page.fill("#create-form [name=price_usd]", "3200")
    page.fill("#create-form [name=max_runs]", "")
    page.wait_for_selector("#create-form[data-valid=true]")
    page.click("[data-testid=create-submit]")
    created_again(page, workflow_id)
    price_id = int(re.search(r"#(\d+)", page.inner_text("[data-testid=create-status]")).group(1))  # type: ignore[union-attr]
    set_dev_price(stack.chain.w3, dev_role("admin"), stack.chain.deployment.feeds["ethereum"], Decimal("3198.15"))
    cells = executed(page, price_id)
    assert cells[4] == "$3198.15 · oracle", cells
    page.wait_for_selector(f"[data-testid=workflows] tr[data-workflow-id='{price_id}'][data-status=completed]")
    page.screenshot(path=str(artifacts / "04b-price-run.png"), full_page=True)


def created_again(page: Any, previous: int) -> None:
    try:
        page.wait_for_function(
            f"() => /Created workflow #(?!{previous}\\b)\\d+/.test("
            "document.getElementById('create-status').textContent)"
        )
    except Exception as exc:
        status, banner = page.inner_text("[data-testid=create-status]"), page.inner_text("[data-testid=banner]")
        raise AssertionError(f"not created: {status!r}; banner {banner!r}") from exc


def executed(page: Any, workflow_id: int) -> list[str]:
    """The feed row of the workflow's first successful run, once the executor reported its latency."""
    selector = f"[data-testid=feed] tr[data-workflow-id='{workflow_id}'][data-status=success]"
    page.wait_for_function(
        "s => { const r = document.querySelector(s); return r && r.lastElementChild.textContent.endsWith(' s'); }",
        arg=selector,
        timeout=45_000,
    )
    return [c.inner_text() for c in page.query_selector_all(f"{selector} td")]


def test_a_rejected_signature_says_so_and_creates_nothing(stack: Stack, page: Any, artifacts: Path) -> None:
    wallet = InjectedWallet(dev_role("user"), stack.chain.w3)
    wallet.reject = True
    open_dashboard(page, stack, wallet)
    connect(page, wallet)
    before = workflow_count(stack, wallet.account.address)
    fill_native(page, trigger="0", in_s="600")
    page.wait_for_selector("#create-form[data-valid=true]")
    page.click("[data-testid=create-submit]")
    page.wait_for_selector("[data-testid=banner]:has-text('You rejected the signature in your wallet')")
    assert "nothing was created" in page.inner_text("[data-testid=banner]")
    assert page.inner_text("[data-testid=create-status]") == "Not created."
    assert workflow_count(stack, wallet.account.address) == before
    page.screenshot(path=str(artifacts / "05-rejected.png"), full_page=True)


def test_an_empty_escrow_is_named_before_anything_is_signed(stack: Stack, page: Any, artifacts: Path) -> None:
    wallet = InjectedWallet(dev_account(7), stack.chain.w3)  # funded on the chain, nothing in escrow
    open_dashboard(page, stack, wallet)
    connect(page, wallet)
    page.wait_for_function("() => document.getElementById('acct-balance').textContent.startsWith('0 coin')")
    fill_native(page, trigger="0", in_s="600")
    page.wait_for_selector("#create-form[data-valid=true]")
    page.click("[data-testid=create-submit]")
    page.wait_for_selector("[data-testid=banner]:has-text('Insufficient escrow')")
    assert "Deposit to your escrow first" in page.inner_text("[data-testid=banner]")
    assert wallet.signed == [] and workflow_count(stack, wallet.account.address) == 0
    assert page.inner_text("[data-testid=create-errors]") == ""  # not a problem of any field of the form
    assert page.query_selector("[data-testid=feed] tr[data-execution-id]") is None  # only this owner's runs
    page.screenshot(path=str(artifacts / "06-insufficient-escrow.png"), full_page=True)


def test_an_unreachable_backend_is_reported(stack: Stack, page: Any, artifacts: Path) -> None:
    page.route("**/api/**", lambda route: route.abort("connectionrefused"))
    page.goto(stack.url + "/")
    page.wait_for_selector("[data-testid=banner]:has-text('backend is unreachable')")
    assert page.inner_text("[data-testid=chain]") == "backend unreachable"
    page.screenshot(path=str(artifacts / "07-backend-unreachable.png"), full_page=True)
    page.unroute("**/api/**")
    page.wait_for_selector("[data-testid=banner]", state="hidden", timeout=10_000)  # recovers by itself


def test_a_phone_screen_shows_all_without_sideways_scrolling(stack: Stack, browser: Any, artifacts: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    page = context.new_page()
    try:
        page.goto(stack.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        page.fill("[data-testid=view-address]", dev_role("user").address)
        page.press("[data-testid=view-address]", "Enter")
        page.wait_for_function("() => document.getElementById('acct-mode').textContent === 'view only'")
        page.wait_for_selector("[data-testid=workflows] tr[data-workflow-id]")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        for testid in ("connect", "create-submit", "workflows", "feed", "prices", "account"):
            box = page.locator(f"[data-testid={testid}]").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 391, (testid, box)
        page.screenshot(path=str(artifacts / "08-phone.png"), full_page=True)
    finally:
        context.close()


def test_the_form_shows_each_kinds_fields_and_flags_problems_as_you_type(stack: Stack, page: Any) -> None:
    wallet = InjectedWallet(dev_role("user"), stack.chain.w3)
    open_dashboard(page, stack, wallet)
    connect(page, wallet)
    form = "#create-form"
    page.select_option("[data-testid=trigger-type]", "1")
    page.fill(f"{form} [name=interval]", "0")
    page.wait_for_selector(f"{form} [name=interval][aria-invalid=true]")
    page.fill(f"{form} [name=interval]", "60")

    page.select_option("[data-testid=action-type]", "1")  # ERC-20
    assert page.is_visible(f"{form} [name=erc20_token]") and not page.is_visible(f"{form} [name=amount]")
    page.fill(f"{form} [name=erc20_token]", "0xzz")
    page.fill(f"{form} [name=erc20_to]", RECIPIENT)
    page.fill(f"{form} [name=erc20_amount]", "1000")
    page.wait_for_selector(f"{form} [name=erc20_token][aria-invalid=true]")
    assert "action_data.token" in page.inner_text("[data-testid=create-errors]")
    page.fill(f"{form} [name=erc20_token]", RECIPIENT)
    page.wait_for_selector(f"{form}[data-valid=true]")

    page.select_option("[data-testid=action-type]", "2")  # contract call
    assert page.is_visible(f"{form} [name=target]") and not page.is_visible(f"{form} [name=erc20_token]")
    page.fill(f"{form} [name=target]", RECIPIENT)
    page.fill(f"{form} [name=data]", "0x123")  # odd length
    page.wait_for_selector(f"{form} [name=data][aria-invalid=true]")
    page.fill(f"{form} [name=data]", "0x12345678")
    page.fill(f"{form} [name=value]", "0.5.1")
    page.wait_for_selector(f"{form} [name=value][aria-invalid=true]")
    page.fill(f"{form} [name=value]", "0.5")
    page.wait_for_selector(f"{form}[data-valid=true]")
    assert page.inner_text("[data-testid=create-errors]") == "" and wallet.signed == []


def test_the_first_render_shows_what_is_known(stack: Stack, browser: Any) -> None:
    """Issue 13 item 12: when the page says it is ready, the executions that exist are on it (not
    "No executions yet"), the prices say they come from the dev chain's oracle with its own age,
    the workers show the scheduler holding the lease, and the feed is never called offline."""
    import time

    from autometa.chain.contracts import autometa
    from autometa.chain.deploy import transact
    from autometa.domain.workflow import WorkflowSpec

    w3, user = stack.chain.w3, dev_account(6)
    core = autometa(w3, stack.chain.deployment.address)
    transact(w3, user, core.functions.deposit(), value=10**17)
    now = int(w3.eth.get_block("latest")["timestamp"])
    action = {"to": RECIPIENT, "amount_wei": "1000"}
    spec = WorkflowSpec.model_validate(
        {"trigger_type": "time", "trigger_data": {"at": now + 2}, "action_type": "native", "action_data": action}
    )
    transact(w3, user, core.functions.createWorkflow(spec.to_abi()))
    deadline = time.monotonic() + 60
    while httpx.get(f"{stack.url}/api/executions", params={"user": user.address}, timeout=10).json()["total"] == 0:
        assert time.monotonic() < deadline, "no execution recorded"
        time.sleep(0.5)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    try:
        pills: list[str] = []
        page.expose_function("notePill", lambda text: pills.append(text))
        page.add_init_script("""new MutationObserver(() => { const p = document.getElementById('feed-state');
            if (p) window.notePill(p.textContent); }).observe(document, {subtree: true, childList: true,
            characterData: true});""")
        page.goto(stack.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("#feed-rows tr").count() > 0
        assert page.locator("[data-testid=feed-empty]").is_hidden()
        prices = page.locator("#price-list").inner_text()
        assert "oracle · updated" in prices and "backend-api" not in prices, prices
        workers = page.locator("#worker-list").inner_text()
        assert "scheduler" in workers and "holds the lease" in workers and "executor" in workers, workers
        assert "offline" not in pills, pills
    finally:
        context.close()


def test_a_state_workflow_from_the_form_runs_when_its_balance_condition_holds(stack: Stack, page: Any) -> None:
    """The STATE fragment: its inputs flag bad values as you type; a workflow created through it
    (an ERC-20 balance at least 1 token) executes once the balance is minted, not before."""
    from eth_account import Account
    from eth_utils import keccak

    from autometa.chain.contracts import autometa, bind
    from autometa.chain.deploy import transact

    w3, dep, user = stack.chain.w3, stack.chain.deployment, dev_account(7)
    assert dep.token is not None
    transact(w3, user, autometa(w3, dep.address).functions.deposit(), value=10**17)
    watched = Account.create().address
    calldata = "0x" + keccak(text="balanceOf(address)")[:4].hex() + watched[2:].lower().rjust(64, "0")
    wallet = InjectedWallet(user, w3)
    open_dashboard(page, stack, wallet)
    connect(page, wallet)
    form = "#create-form"
    fill_native(page, trigger="3", state_target=dep.token, state_calldata=calldata, state_threshold="1.5")
    page.wait_for_selector(f"{form} [name=state_threshold][aria-invalid=true]")  # not a whole number
    page.select_option(f"{form} [name=state_comparator]", ">=")
    page.fill(f"{form} [name=state_threshold]", str(10**18))
    page.fill(f"{form} [name=state_calldata]", "0x123")  # odd length: the API says so on its field
    page.wait_for_selector(f"{form} [name=state_calldata][aria-invalid=true]")
    page.fill(f"{form} [name=state_calldata]", calldata)
    page.wait_for_selector(f"{form}[data-valid=true]")

    page.click("[data-testid=create-submit]")
    page.wait_for_function("() => /Created workflow #\\d+/.test(document.getElementById('create-status').textContent)")
    workflow_id = int(re.search(r"#(\d+)", page.inner_text("[data-testid=create-status]")).group(1))  # type: ignore[union-attr]
    spec = wallet.signed[-1]["message"]["spec"]
    assert int(spec["triggerKind"]) == 3 and spec["triggerData"].lower().endswith(calldata[2:])
    row = f"[data-testid=workflows] tr[data-workflow-id='{workflow_id}'][data-status=active]"
    page.wait_for_selector(row)
    assert "when the condition holds" in page.inner_text(row) or ">=" in page.inner_text(row)
    page.wait_for_timeout(3_000)  # three blocks with the condition false: nothing runs
    runs = httpx.get(f"{stack.url}/api/executions", params={"user": user.address}, timeout=10).json()["total"]
    assert runs == 0
    transact(w3, dev_role("admin"), bind(w3, "DevToken", dep.token).functions.mint(watched, 10**18))
    executed(page, workflow_id)
    assert httpx.get(f"{stack.url}/api/workflow/{workflow_id}", timeout=10).json()["run_count"] == 1
