// @generated from the initial migration; keep in step with migrations/.

diesel::table! {
    users (id) {
        id -> Text,
        openid -> Text,
        unionid -> Nullable<Text>,
        nickname -> Nullable<Text>,
        avatar -> Nullable<Text>,
        phone_cipher -> Nullable<Text>,
        phone_key_id -> Nullable<Text>,
        phone_blind_index -> Nullable<Text>,
        phone_masked -> Nullable<Text>,
        status -> Text,
        last_login_ip -> Nullable<Text>,
        last_login_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        family_id -> Text,
        subject_type -> Text,
        subject_id -> Text,
        token_hash -> Text,
        status -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    merchants (id) {
        id -> Text,
        owner_user_id -> Text,
        merchant_name -> Text,
        contact_name -> Text,
        contact_phone_cipher -> Text,
        contact_phone_key_id -> Text,
        contact_phone_masked -> Text,
        business_license -> Text,
        address -> Text,
        status -> Text,
        reviewed_by -> Nullable<Text>,
        reviewed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payment_codes (id) {
        id -> Text,
        merchant_id -> Text,
        label -> Text,
        amount_fen -> Nullable<BigInt>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    payment_orders (id) {
        id -> Text,
        order_no -> Text,
        user_id -> Text,
        merchant_id -> Text,
        payment_code_id -> Text,
        amount_fen -> BigInt,
        refunded_fen -> BigInt,
        status -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        description -> Text,
        payer_openid -> Text,
        prepay_id -> Nullable<Text>,
        wechat_transaction_id -> Nullable<Text>,
        expires_at -> Timestamp,
        paid_at -> Nullable<Timestamp>,
        closed_at -> Nullable<Timestamp>,
        version -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    refunds (id) {
        id -> Text,
        out_refund_no -> Text,
        order_no -> Text,
        user_id -> Text,
        merchant_id -> Text,
        amount_fen -> BigInt,
        reason -> Text,
        status -> Text,
        wechat_refund_id -> Nullable<Text>,
        requested_by -> Text,
        points_clawed_back -> BigInt,
        points_shortfall -> BigInt,
        success_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    points_records (id) {
        id -> Text,
        user_id -> Text,
        points_change -> BigInt,
        balance_after -> BigInt,
        kind -> Text,
        source_type -> Text,
        source_id -> Text,
        description -> Text,
        remaining -> Nullable<BigInt>,
        expires_at -> Nullable<Timestamp>,
        capped_points -> BigInt,
        shortfall -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_points (user_id) {
        user_id -> Text,
        available -> BigInt,
        total_earned -> BigInt,
        total_used -> BigInt,
        total_expired -> BigInt,
        total_clawed_back -> BigInt,
        version -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    points_rules (id) {
        id -> Text,
        points_per_yuan -> Integer,
        min_order_fen -> BigInt,
        max_order_fen -> BigInt,
        per_order_max_points -> BigInt,
        daily_cap -> BigInt,
        lifetime_cap -> BigInt,
        expiry_days -> Integer,
        effective_from -> Timestamp,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    order_leases (order_no) {
        order_no -> Text,
        owner -> Text,
        lease_until -> Timestamp,
        claims -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        aggregate_id -> Text,
        payload -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    notification_log (id) {
        id -> Text,
        notification_id -> Text,
        event_type -> Text,
        out_trade_no -> Nullable<Text>,
        out_refund_no -> Nullable<Text>,
        serial -> Text,
        raw_body -> Text,
        result -> Text,
        error -> Nullable<Text>,
        received_at -> Timestamp,
        kind -> Text,
        headers -> Nullable<Text>,
    }
}

diesel::table! {
    admin_users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        status -> Text,
        created_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        failed_logins -> Integer,
        locked_until -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        actor_type -> Text,
        actor_id -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        before_json -> Nullable<Text>,
        after_json -> Nullable<Text>,
        trace_id -> Text,
        ip -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    user_login_ips (user_id, ip) {
        user_id -> Text,
        ip -> Text,
        first_seen -> Timestamp,
        last_seen -> Timestamp,
    }
}

diesel::table! {
    risk_rules (id) {
        id -> Text,
        name -> Text,
        condition_json -> Text,
        action -> Text,
        priority -> Integer,
        enabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    subscribe_messages (id) {
        id -> Text,
        user_id -> Text,
        openid -> Text,
        template_id -> Text,
        kind -> Text,
        reference -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    reconciliation_runs (id) {
        id -> Text,
        bill_date -> Text,
        status -> Text,
        trigger_kind -> Text,
        requested_by -> Nullable<Text>,
        bill_rows -> BigInt,
        matched -> BigInt,
        missing_here -> BigInt,
        missing_at_wechat -> BigInt,
        amount_mismatches -> BigInt,
        status_mismatches -> BigInt,
        repaired -> BigInt,
        error -> Nullable<Text>,
        started_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    reconciliation_discrepancies (id) {
        id -> Text,
        run_id -> Text,
        kind -> Text,
        order_no -> Text,
        out_refund_no -> Nullable<Text>,
        our_amount_fen -> Nullable<BigInt>,
        wechat_amount_fen -> Nullable<BigInt>,
        our_status -> Nullable<Text>,
        wechat_status -> Nullable<Text>,
        repaired_at -> Nullable<Timestamp>,
        repair_note -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    bill_order_fees (order_no) {
        order_no -> Text,
        bill_date -> Text,
        fee_fen -> BigInt,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    merchant_staff (merchant_id, user_id) {
        merchant_id -> Text,
        user_id -> Text,
        role -> Text,
        invited_by -> Text,
        invite_id -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    bill_refund_fees (out_refund_no) {
        out_refund_no -> Text,
        order_no -> Text,
        bill_date -> Text,
        fee_returned_fen -> BigInt,
        recorded_at -> Timestamp,
    }
}

diesel::table! {
    merchant_staff_invites (id) {
        id -> Text,
        code_hash -> Text,
        merchant_id -> Text,
        role -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        redeemed_by -> Nullable<Text>,
        redeemed_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    users,
    refresh_tokens,
    merchants,
    payment_codes,
    payment_orders,
    order_leases,
    refunds,
    points_records,
    user_points,
    points_rules,
    outbox,
    notification_log,
    admin_users,
    audit_log,
    user_login_ips,
    risk_rules,
    subscribe_messages,
    reconciliation_runs,
    reconciliation_discrepancies,
    bill_order_fees,
    bill_refund_fees,
    merchant_staff,
    merchant_staff_invites,
);
