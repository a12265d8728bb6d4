# 发布管理（REQUIREMENTS §5，手册 §5.1.4）

nav-releases = 发布
release-list-title = 发布
release-version = 版本
release-status-planned = 计划中
release-status-in-progress = 进行中
release-status-deployed = 已部署
release-status-rolled-back = 已回退
release-status-reviewed = 已评审
release-status-closed = 已关闭
release-status-cancelled = 已取消
release-notes-markdown = 发布说明（Markdown）
release-notes-pdf = 发布说明（PDF）
release-signers = 签核人（按顺序）
release-signed-off = 签核时间
release-stage-build = 构建
release-stage-test = 测试
release-stage-acceptance = 验收
release-stage-deployment = 部署
release-new-title = 新建发布
release-action-create = 创建发布
release-help-lines = 每行一项
field-version = 版本
field-change-ids = 变更
field-rollback-plan = 回退计划
field-known-issues = 已知问题
err-unknown-project = 没有该服务项目
