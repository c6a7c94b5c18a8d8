import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from jobs.choices import JobStatus
from monitoring.models import AuditLog
from tests import factories

pytestmark = pytest.mark.django_db


def test_admin_cancel_and_retry_actions(admin_client_, django_capture_on_commit_callbacks):
    queued = factories.JobFactory(job_type="test_ok", status=JobStatus.QUEUED)
    done = factories.JobFactory(status=JobStatus.COMPLETED, created_at=timezone.now() - dt.timedelta(minutes=2),
                                completed_at=timezone.now())  # fmt: skip
    url = reverse("admin:jobs_job_changelist")
    r = admin_client_.post(url, {"action": "cancel_jobs", "_selected_action": [queued.pk, done.pk]}, follow=True)
    assert r.status_code == 200
    queued.refresh_from_db()
    done.refresh_from_db()
    assert queued.status == JobStatus.CANCELLED and done.status == JobStatus.COMPLETED
    assert b"1 job(s) cancelled" in r.content
    assert AuditLog.objects.filter(action="job_cancel", resource_id=str(queued.pk), status="success").exists()
    assert AuditLog.objects.filter(action="job_cancel", resource_id=str(done.pk), status="failure").exists()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client_.post(url, {"action": "retry_jobs", "_selected_action": [queued.pk]})
    queued.refresh_from_db()
    assert queued.status == JobStatus.COMPLETED and queued.attempt_number == 2
