import pytest


@pytest.fixture
def files_in_tmp(settings, tmp_path):
    """Walked views may write exports, backups, uploads or read frames: keep all of it in tmp."""
    for name in ("MEDIA_ROOT", "EXPORT_DIR", "BACKUP_DIR", "UPLOAD_DIR"):
        path = tmp_path / name.lower()
        path.mkdir()
        setattr(settings, name, path)
