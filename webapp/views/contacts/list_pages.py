"""Contacts pages: the lists (index, create, edit, members, CSV export)."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from analytics import links
from contacts import gdpr, lists, memberships, people
from contacts.db import db
from contacts.models import Purpose
from contacts.spreadsheet import rows_to_csv_bytes
from webapp.auth import audit, current_org_id, roles_required
from webapp.i18n import translate
from webapp.templating import current_org
from webapp.views.contacts import PAGE, READ, WRITE, bp, download, or_404, page_number, secret


@bp.route("/")
@roles_required(*READ)
def index():
    org_id = current_org_id()
    counts = lists.member_counts(org_id)
    stale = gdpr.count_stale(org_id, current_org().retention_months)
    return render_template(
        "contacts/index.html",
        lists=lists.all_lists(org_id),
        counts=counts,
        stale=stale,
        total=people.count_contacts(org_id),
    )


@bp.route("/lists/new", methods=["GET", "POST"])
@roles_required(*WRITE)
def new_list():
    if request.method == "POST":
        form = request.form
        mlist = lists.create_list(
            current_org_id(),
            form.get("name", ""),
            form.get("purpose", "newsletter"),
            description=form.get("description", ""),
            double_opt_in=bool(form.get("double_opt_in")),
            custom_fields=form.get("custom_fields", ""),
        )
        db.session.commit()
        flash(_("Liste créée."), "success")
        return redirect(url_for("contacts.list_detail", list_id=mlist.id))
    return render_template("contacts/list_form.html", mlist=None, purposes=list(Purpose))


@bp.route("/lists/<int:list_id>/edit", methods=["GET", "POST"])
@roles_required(*WRITE)
def edit_list(list_id: int):
    org_id = current_org_id()
    mlist = or_404(lists.get_list(org_id, list_id))
    if request.method == "POST":
        form = request.form
        lists.update_list(
            org_id,
            mlist.id,
            {
                "name": form.get("name", ""),
                "purpose": form.get("purpose", "newsletter"),
                "description": form.get("description", ""),
                "double_opt_in": bool(form.get("double_opt_in")),
                "custom_fields": form.get("custom_fields", ""),
            },
        )
        db.session.commit()
        flash(_("Liste enregistrée."), "success")
        return redirect(url_for("contacts.list_detail", list_id=mlist.id))
    return render_template("contacts/list_form.html", mlist=mlist, purposes=list(Purpose))


@bp.route("/lists/<int:list_id>")
@roles_required(*READ)
def list_detail(list_id: int):
    org_id = current_org_id()
    mlist = or_404(lists.get_list(org_id, list_id))
    page = page_number()
    members = memberships.list_members(org_id, mlist.id, limit=PAGE, offset=(page - 1) * PAGE)
    form_url = links.subscribe_url(
        current_app.config["CRIEUR_PUBLIC_URL"], secret(), org_id, mlist.id
    )
    snippet = (
        f'<iframe src="{form_url}?embed=1" title="Inscription : {mlist.name}" '
        'width="100%" height="560" style="border:0" loading="lazy"></iframe>'
    )
    return render_template(
        "contacts/list_detail.html",
        mlist=mlist,
        counts=lists.member_counts(org_id).get(mlist.id, {}),
        by_source=lists.counts_by_source(org_id, mlist.id),
        members=members,
        page=page,
        page_size=PAGE,
        form_url=form_url,
        snippet=snippet,
        sendable=memberships.subscription_is_sendable,
    )


@bp.route("/lists/<int:list_id>/export.csv")
@roles_required(*WRITE)
def export_list(list_id: int):
    """The list's members as CSV for a spreadsheet (formula-safe)."""
    org_id = current_org_id()
    mlist = or_404(lists.get_list(org_id, list_id))
    header, body = memberships.export_rows(org_id, mlist)
    data = rows_to_csv_bytes([translate(title) for title in header], body)
    audit("export_list", f"list {mlist.id}")
    return download(data, f"liste-{mlist.id}.csv", "text/csv; charset=utf-8")
