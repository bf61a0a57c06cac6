// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// The slice of ERC-20 the Market needs. The token is fixed at construction.
interface IERC20 {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

/// Orders for compute capacity, paid in one ERC-20 token held in escrow here.
///
/// Lifecycle: Created (user deposited, named a provider and a payee) -> Active (the provider
/// locked it; its start time is the lock's block time) -> Cancelled | Completed.
/// Payment is released to the payee linearly over the order's duration from its start; the
/// user may cancel and get the unreleased part back, or extend a running order.
contract Market {
    /// What an order buys. Mirrors grid-policy-sdk's `Resources`; an empty `gpuModel` means "any".
    struct Resources {
        uint64 cpuMillis;
        uint64 memoryBytes;
        uint64 storageBytes;
        uint32 gpus;
        string gpuModel;
    }

    /// `None` is the state of an id no order has; it is never stored for a real order.
    enum Status {
        None,
        Created,
        Active,
        Cancelled,
        Completed
    }

    struct Order {
        address user;
        address provider;
        address payee;
        Resources resources;
        uint64 durationSecs;
        uint256 amount;
        uint256 paid;
        uint64 startTime;
        /// Block time of `createOrder`: how long the order has waited to be locked.
        uint64 createdAt;
        Status status;
    }

    /// No order has this id.
    error OrderNotFound(uint256 id);
    /// Only the order's provider may do this.
    error NotProvider(uint256 id, address caller);
    /// Only the order's user may do this.
    error NotUser(uint256 id, address caller);
    /// The order must be Created (not yet locked) for this.
    error NotCreated(uint256 id, Status status);
    /// The order must be Active (locked, running) for this.
    error NotActive(uint256 id, Status status);
    /// The order is already Cancelled or Completed.
    error OrderClosed(uint256 id, Status status);
    /// The order's full duration has elapsed; it can only be settled now.
    error OrderExpired(uint256 id);
    /// A provider or payee address is zero.
    error ZeroAddress();
    /// A duration (or an extension of one) is zero.
    error ZeroDuration();
    /// A payment amount is zero.
    error ZeroAmount();
    /// The token refused or failed a transfer.
    error TransferFailed();

    event OrderCreated(
        uint256 indexed id,
        address indexed user,
        address indexed provider,
        address payee,
        uint256 amount,
        uint64 durationSecs
    );
    event OrderActivated(uint256 indexed id, address indexed provider, uint64 startTime);
    /// `durationSecs` and `amount` are the order's new totals.
    event OrderExtended(
        uint256 indexed id, uint64 extraSecs, uint256 extraAmount, uint64 durationSecs, uint256 amount
    );
    event OrderCancelled(uint256 indexed id, uint256 paidToPayee, uint256 refunded);
    /// `payout` went to the payee now; `totalPaid` is everything the payee has had.
    event OrderSettled(uint256 indexed id, uint256 payout, uint256 totalPaid);
    event OrderCompleted(uint256 indexed id);

    IERC20 public immutable token;
    /// The id the next order gets. Ids start at 1 so that 0 is never a real order.
    uint256 public nextOrderId = 1;

    mapping(uint256 => Order) private orders;

    constructor(IERC20 token_) {
        if (address(token_) == address(0)) revert ZeroAddress();
        token = token_;
    }

    /// Opens an order and pulls `amount` of the token from the caller into escrow
    /// (the caller must have approved this contract first).
    function createOrder(
        address provider,
        address payee,
        Resources calldata res,
        uint64 durationSecs,
        uint256 amount
    ) external returns (uint256 id) {
        if (provider == address(0) || payee == address(0)) revert ZeroAddress();
        if (durationSecs == 0) revert ZeroDuration();
        if (amount == 0) revert ZeroAmount();

        id = nextOrderId++;
        Order storage o = orders[id];
        o.user = msg.sender;
        o.provider = provider;
        o.payee = payee;
        o.resources = res;
        o.durationSecs = durationSecs;
        o.amount = amount;
        o.createdAt = uint64(block.timestamp);
        o.status = Status.Created;

        emit OrderCreated(id, msg.sender, provider, payee, amount, durationSecs);
        _pull(msg.sender, amount);
    }

    /// The provider locks the order: it starts running now.
    function activate(uint256 id) external {
        Order storage o = _get(id);
        if (msg.sender != o.provider) revert NotProvider(id, msg.sender);
        if (o.status != Status.Created) revert NotCreated(id, o.status);
        o.status = Status.Active;
        o.startTime = uint64(block.timestamp);
        emit OrderActivated(id, msg.sender, o.startTime);
    }

    /// The user buys more time for a running order, paying `extraAmount` more.
    function extend(uint256 id, uint64 extraSecs, uint256 extraAmount) external {
        Order storage o = _get(id);
        if (msg.sender != o.user) revert NotUser(id, msg.sender);
        if (o.status != Status.Active) revert NotActive(id, o.status);
        // Once the full duration has run, the order is over; reviving it would re-price time
        // already delivered.
        if (_elapsed(o) >= o.durationSecs) revert OrderExpired(id);
        if (extraSecs == 0) revert ZeroDuration();
        if (extraAmount == 0) revert ZeroAmount();
        o.durationSecs += extraSecs;
        o.amount += extraAmount;
        emit OrderExtended(id, extraSecs, extraAmount, o.durationSecs, o.amount);
        _pull(msg.sender, extraAmount);
    }

    /// The user ends the order. From Created: everything is refunded. From Active: the payee
    /// gets what has been released and not yet paid, the user gets the rest.
    function cancel(uint256 id) external {
        Order storage o = _get(id);
        if (msg.sender != o.user) revert NotUser(id, msg.sender);
        Status status = o.status;
        if (status == Status.Cancelled || status == Status.Completed) revert OrderClosed(id, status);

        uint256 payout = 0;
        if (status == Status.Active) {
            payout = _released(o) - o.paid;
        }
        uint256 refund = o.amount - o.paid - payout;
        o.paid += payout;
        o.status = Status.Cancelled;
        emit OrderCancelled(id, payout, refund);

        if (payout > 0) _push(o.payee, payout);
        if (refund > 0) _push(o.user, refund);
    }

    /// Pays the payee what has been released and not yet paid. Anyone may call it: the money
    /// only ever goes to the payee. When the full duration has elapsed the order is Completed.
    function settle(uint256 id) external {
        Order storage o = _get(id);
        if (o.status != Status.Active) revert NotActive(id, o.status);
        uint256 payout = _released(o) - o.paid;
        o.paid += payout;
        bool done = _elapsed(o) >= o.durationSecs;
        if (done) o.status = Status.Completed;
        emit OrderSettled(id, payout, o.paid);
        if (done) emit OrderCompleted(id);
        if (payout > 0) _push(o.payee, payout);
    }

    /// The whole order. Reverts with `OrderNotFound` for an id no order has.
    function getOrder(uint256 id) external view returns (Order memory) {
        return _get(id);
    }

    /// How much of the payment has been released to the payee so far (paid or not).
    function released(uint256 id) external view returns (uint256) {
        return _released(_get(id));
    }

    function _get(uint256 id) private view returns (Order storage o) {
        o = orders[id];
        if (o.status == Status.None) revert OrderNotFound(id);
    }

    function _elapsed(Order storage o) private view returns (uint256) {
        if (o.status != Status.Active) return 0;
        return block.timestamp - o.startTime;
    }

    /// Linear release over the duration, from the start time. Before activation nothing is
    /// released; after cancellation or completion the release is frozen at what was paid.
    /// An extension re-spreads the new total over the new duration, which could dip below what
    /// was already paid; the release never goes back, so it is at least `paid`.
    function _released(Order storage o) private view returns (uint256) {
        if (o.status != Status.Active) return o.paid;
        uint256 elapsed = _elapsed(o);
        if (elapsed >= o.durationSecs) return o.amount;
        uint256 linear = (o.amount * elapsed) / o.durationSecs;
        return linear > o.paid ? linear : o.paid;
    }

    function _pull(address from, uint256 amount) private {
        if (!token.transferFrom(from, address(this), amount)) revert TransferFailed();
    }

    function _push(address to, uint256 amount) private {
        if (!token.transfer(to, amount)) revert TransferFailed();
    }
}
